"""Sequential: layers applied in order, keyed "0", "1", ... (torch.nn.Sequential).

A Conv2d or Linear (exactly those classes) directly followed by a ReLU runs as one fused
kernel call (conv2d_relu / linear_relu): the same values and gradients as the two layers,
one pass fewer over the activation. A Conv2d, ReLU, MaxPool2d (without return_indices) runs
as one autograd node (F.conv2d_relu_max_pool2d): the relu's gradient mask is applied to the
pooled gradient, a quarter of the size. A ValueError from a layer is re-raised naming its
index.
"""

from collections import OrderedDict

from fastvision.nn.modules.activation import ReLU
from fastvision.nn.modules.conv import Conv2d
from fastvision.nn.modules.linear import Linear
from fastvision.nn.modules.module import Module
from fastvision.nn.modules.pooling import MaxPool2d

_FUSABLE = (Conv2d, Linear)


class Sequential(Module):
    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for k, m in args[0].items():
                self.add_module(k, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def add_module(self, name, module):
        if not isinstance(module, Module):
            raise TypeError(f"Sequential: {name} must be a Module, got {type(module).__name__}")
        super().add_module(name, module)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(mods[idx]))
        if not -len(mods) <= idx < len(mods):
            raise IndexError(f"Sequential: index {idx} is out of range for {len(mods)} layers")
        return mods[idx][1]

    def forward(self, x):
        mods = list(self._modules.values())
        i = 0
        while i < len(mods):
            m = mods[i]
            fuse = type(m) in _FUSABLE and i + 1 < len(mods) and type(mods[i + 1]) is ReLU
            pool = (fuse and type(m) is Conv2d and i + 2 < len(mods)
                    and type(mods[i + 2]) is MaxPool2d and not mods[i + 2].return_indices)
            try:
                if pool:
                    x = m.forward_relu_max_pool(x, mods[i + 2])
                else:
                    x = m.forward_relu(x) if fuse else m(x)
            except ValueError as e:
                raise ValueError(f"Sequential layer {i}: {e}") from None
            i += 3 if pool else (2 if fuse else 1)
        return x
