"""Keras-style training: Module.compile / fit / evaluate / predict (TrainingMixin, a base
class of nn.Module), callbacks, and safetensors weights (save_weights / load_weights)."""

from fastvision.training.callbacks import (Callback, CSVLogger, EarlyStopping, History,
                                           ModelCheckpoint)
from fastvision.training.model import TrainingMixin
from fastvision.training.progress import Progbar

__all__ = ["TrainingMixin", "Callback", "History", "EarlyStopping", "ModelCheckpoint",
           "CSVLogger", "Progbar"]
