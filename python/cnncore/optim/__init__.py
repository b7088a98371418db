"""Optimisers and learning-rate schedulers."""
from . import lr_scheduler
from .lr_scheduler import CosineAnnealingLR, OneCycleLR, ReduceLROnPlateau, StepLR
from .optimizer import SGD, Adam, AdamW, Optimizer, RMSprop

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler", "StepLR",
           "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau"]
