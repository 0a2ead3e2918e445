"""Feeding the training loop: DataLoader (NumPy mini-batches) and batch transforms."""

from fastvision.data import transforms
from fastvision.data.loader import DataLoader

__all__ = ["DataLoader", "transforms"]
