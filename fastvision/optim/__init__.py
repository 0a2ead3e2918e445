"""Optimizers (torch.optim names and defaults) over the fused in-place kernels, and
learning-rate schedulers (fastvision.optim.lr_scheduler)."""

from fastvision.optim import lr_scheduler
from fastvision.optim.adam import Adam, AdamW
from fastvision.optim.optimizer import Optimizer
from fastvision.optim.rmsprop import RMSprop
from fastvision.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "lr_scheduler"]
