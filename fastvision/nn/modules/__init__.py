"""Layers (torch.nn names): Module, Conv2d, Linear, pooling, activations, containers, losses."""

from fastvision.nn.modules.activation import Dropout, Flatten, ReLU
from fastvision.nn.modules.container import Sequential
from fastvision.nn.modules.conv import Conv2d
from fastvision.nn.modules.linear import Linear
from fastvision.nn.modules.loss import CrossEntropyLoss, MSELoss
from fastvision.nn.modules.module import IncompatibleKeys, Module, StateDictError
from fastvision.nn.modules.pooling import AvgPool2d, MaxPool2d

__all__ = ["Module", "Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "ReLU", "Dropout",
           "Flatten", "Sequential", "CrossEntropyLoss", "MSELoss", "StateDictError",
           "IncompatibleKeys"]
