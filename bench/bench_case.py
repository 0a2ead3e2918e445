"""The Case record and the helpers every case builder uses (see bench_cases.py)."""

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

NCHW, CL, CONTIG = "nchw", "channels_last", "contiguous"


@dataclass
class Case:
    name: str                      # "conv2 fwd"
    group: str                     # sgemm | conv | pool | linear | relu | loss
    layer: Optional[str]           # the reference-CNN layer it belongs to (None: not in the sum)
    shape: str                     # for the table
    work: float                    # FLOPs (metric GFLOP/s) or bytes moved (metric GB/s)
    metric: str
    fv_ops: tuple                  # fastvision.ops names it needs
    make: Callable                 # rng -> inputs dict
    reference: Callable            # inputs -> reference data (float64)
    check: Callable                # (inputs, reference, outputs tuple) -> (ok, message)
    fastvision: Callable           # (ops, inputs) -> callable
    numpy: Optional[Callable] = None   # inputs -> callable
    torch: Optional[Callable] = None   # (torch, inputs, layout) -> callable
    layouts: tuple = (CONTIG,)


def to_numpy(out):
    """Outputs as a tuple of NumPy arrays / floats (torch tensors made contiguous)."""
    if not isinstance(out, (tuple, list)):
        out = (out,)
    res = []
    for o in out:
        if hasattr(o, "detach"):
            o = o.detach().contiguous().numpy()
            o = o.item() if o.ndim == 0 else o
        res.append(o)
    return tuple(res)


def tensor(T, a, layout):
    t = T.from_numpy(np.ascontiguousarray(a))
    return t.contiguous(memory_format=T.channels_last) if layout == CL and t.ndim == 4 else t


def randn(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def bind2(f, a, b):
    return lambda: f(a, b)
