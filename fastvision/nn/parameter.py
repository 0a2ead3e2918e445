"""Parameter: a Tensor that a Module registers as learnable (requires_grad=True by default)."""

import numpy as np

from fastvision.tensor import Tensor


class Parameter(Tensor):
    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        # optimizers update parameters in place, which needs an owned C-contiguous float32 array
        if not (isinstance(data, np.ndarray) and data.dtype == np.float32
                and data.flags.c_contiguous and data.flags.writeable):
            data = np.array(data, dtype=np.float32, order="C")
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
