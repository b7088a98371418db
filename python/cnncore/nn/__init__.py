"""Neural-network building blocks: :class:`Module`, layers, losses, init."""
from .. import functional
from . import init, utils
from .layers import *  # noqa: F401,F403
from .layers import __all__ as _layers_all
from .loss import CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import (IncompatibleKeys, Module, ModuleDict, ModuleList, Parameter, Sequential,
                     StateDictError)

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Parameter", "IncompatibleKeys",
           "StateDictError",
           "init", "utils", "functional", "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss",
           *_layers_all]
