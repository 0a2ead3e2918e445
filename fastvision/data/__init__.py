"""Feeding the training loop: DataLoader (NumPy mini-batches), random batch transforms
(torchvision names) and the vectorised geometry they use (functional)."""

from fastvision.data import functional, transforms
from fastvision.data.loader import DataLoader

__all__ = ["DataLoader", "functional", "transforms"]
