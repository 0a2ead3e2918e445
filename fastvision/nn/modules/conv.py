"""Conv2d: 2-D convolution layer over NCHW input, weights OIHW (torch.nn.Conv2d)."""

from fastvision.nn import functional as F
from fastvision.nn import init as _init
from fastvision.nn.modules._util import check_input, pair, positive_int
from fastvision.nn.modules.module import Module
from fastvision.nn.parameter import Parameter
from fastvision.tensor import zeros


class Conv2d(Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", init="torch", generator=None):
        super().__init__()
        self.in_channels = positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv2d", "out_channels", out_channels)
        self.groups = positive_int("Conv2d", "groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups must divide in_channels and out_channels, got "
                             f"groups={groups}, in_channels={in_channels}, "
                             f"out_channels={out_channels}")
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: padding_mode must be 'zeros', got {padding_mode!r}")
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size, 1)
        self.stride = pair("Conv2d", "stride", stride, 1)
        self.dilation = pair("Conv2d", "dilation", dilation, 1)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv2d: padding must be 'same', 'valid' or ints, "
                                 f"got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("Conv2d: padding='same' requires stride 1")
            self.padding = padding
        else:
            self.padding = pair("Conv2d", "padding", padding, 0)
        self.padding_mode = padding_mode
        kh, kw = self.kernel_size
        self.weight = Parameter(zeros(out_channels, in_channels // groups, kh, kw))
        self.bias = Parameter(zeros(out_channels)) if bias else None
        if not bias:
            self.register_parameter("bias", None)
        self.reset_parameters(init, generator=generator)

    def reset_parameters(self, init="torch", generator=None):
        _init.init_layer_(self.weight, self.bias, init, generator)

    def _check(self, x):
        check_input(self, x, 4, 1, self.in_channels, "(N, {size}, H, W)")

    def forward(self, x):
        self._check(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def forward_relu(self, x):
        """relu(self(x)) through the fused kernel (used by Sequential for Conv2d, ReLU)."""
        self._check(x)
        return F.conv2d_relu(x, self.weight, self.bias, self.stride, self.padding,
                             self.dilation, self.groups)

    def forward_relu_max_pool(self, x, pool):
        """pool(relu(self(x))) as one autograd node (used by Sequential for Conv2d, ReLU,
        MaxPool2d)."""
        self._check(x)
        return F.conv2d_relu_max_pool2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
            kernel_size=pool.kernel_size, pool_stride=pool.stride, pool_padding=pool.padding,
            pool_dilation=pool.dilation, ceil_mode=pool.ceil_mode)

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
