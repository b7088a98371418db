"""Optimisers and learning-rate schedulers."""
from . import lr_scheduler
from .lr_scheduler import CosineAnnealingLR, StepLR
from .optimizer import SGD, Adam, AdamW, Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "StepLR", "CosineAnnealingLR"]
