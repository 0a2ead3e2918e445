"""Datasets as NumPy arrays: `fastvision.datasets.mnist.load_data()`."""

from fastvision.datasets import mnist

__all__ = ["mnist"]
