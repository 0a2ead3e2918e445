"""fastvision.nn: Parameter, layers (torch.nn names), functional and init."""

from fastvision.nn import functional, init
from fastvision.nn.modules import (AvgPool2d, Conv2d, CrossEntropyLoss, Dropout, Flatten,
                                   IncompatibleKeys, Linear, MaxPool2d, Module, MSELoss, ReLU,
                                   Sequential, StateDictError)
from fastvision.nn.parameter import Parameter

__all__ = ["Parameter", "Module", "Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "ReLU",
           "Dropout", "Flatten", "Sequential", "CrossEntropyLoss", "MSELoss", "StateDictError",
           "IncompatibleKeys", "functional", "init"]
