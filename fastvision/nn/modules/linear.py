"""Linear: y = x @ weight.T + bias, weight (out_features, in_features) (torch.nn.Linear)."""

from fastvision.nn import functional as F
from fastvision.nn import init as _init
from fastvision.nn.modules._util import positive_int
from fastvision.nn.modules.module import Module
from fastvision.nn.parameter import Parameter
from fastvision.tensor import zeros


class Linear(Module):
    def __init__(self, in_features, out_features, bias=True, init="torch", generator=None):
        super().__init__()
        self.in_features = positive_int("Linear", "in_features", in_features)
        self.out_features = positive_int("Linear", "out_features", out_features)
        self.weight = Parameter(zeros(out_features, in_features))
        self.bias = Parameter(zeros(out_features)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters(init, generator=generator)

    def reset_parameters(self, init="torch", generator=None):
        _init.init_layer_(self.weight, self.bias, init, generator)

    def _check(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (..., {self.in_features}), "
                             f"got shape {tuple(x.shape)}")

    def forward(self, x):
        self._check(x)
        return F.linear(x, self.weight, self.bias)

    def forward_relu(self, x):
        """relu(self(x)) through the fused kernel (used by Sequential for Linear, ReLU)."""
        self._check(x)
        return F.linear_relu(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
