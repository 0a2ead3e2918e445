"""fastvision: hand-written C++ kernels for small image CNNs, with a NumPy-level API.

    import fastvision as fv
    y = fv.ops.conv2d(x, w, b, padding=1)   # NCHW / OIHW float32 arrays in, arrays out
    fv.isa()                                 # 'scalar' | 'avx2' | 'avx512'
    fv.set_num_threads(2)

Training (PyTorch names): fv.Tensor / fv.tensor with autograd, fv.no_grad(),
fv.manual_seed(s), fastvision.nn (layers, functional, init), fastvision.optim (optimizers,
lr_scheduler); Keras-style model.compile / fit / evaluate / predict on every nn.Module
(fastvision.training, callbacks); fv.save(state_dict, path) / fv.load(path) and
model.save_weights / load_weights in safetensors. CLI: python -m fastvision train|evaluate.

Environment: FASTVISION_ISA=scalar|avx2|avx512 lowers the dispatch level;
FASTVISION_NUM_THREADS sets the thread pool size; FASTVISION_CONV_ALGO=auto|gemm|winograd|winograd4
picks the 3x3 convolution algorithm (set_conv_algorithm). All are read once, at import.
"""

from fastvision import _C
from fastvision import ops

_C._init_from_env()  # FASTVISION_ISA, FASTVISION_NUM_THREADS (ValueError on a bad value)
_C._init_conv_algorithm_from_env()  # FASTVISION_CONV_ALGO

from fastvision._random import manual_seed  # noqa: E402
from fastvision.autograd import is_grad_enabled, no_grad  # noqa: E402
from fastvision.tensor import Tensor, ones, randn, tensor, zeros  # noqa: E402
from fastvision import nn, optim  # noqa: E402
from fastvision import training  # noqa: E402
from fastvision.serialization import WeightsFileError, load, save  # noqa: E402

__version__ = "0.1.0"


def isa() -> str:
    """The ISA level kernels dispatch to: 'scalar', 'avx2' or 'avx512'."""
    return _C.isa()


def detected_isa() -> str:
    """The best ISA level this CPU and OS support."""
    return _C.detected_isa()


def set_isa(level: str) -> None:
    """Lower (or restore) the dispatch level at run time; ValueError above detected_isa()."""
    if not isinstance(level, str):
        raise TypeError(f"set_isa: level must be a str, got {type(level).__name__}")
    _C.set_isa(level)


def available_isas() -> list:
    """Every level this machine can run, lowest first."""
    levels = ["scalar", "avx2", "avx512"]
    return levels[: levels.index(_C.detected_isa()) + 1]


def get_num_threads() -> int:
    return _C.get_num_threads()


def set_num_threads(n: int) -> None:
    """Size of the persistent kernel thread pool (>= 1)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _C.set_num_threads(n)


def set_conv_algorithm(algorithm: str) -> None:
    """How 3x3 stride-1 convolutions (dilation 1, groups 1, padding <= 2) are computed, forward
    and backward:

      "auto" (default)  per pass, Winograd where it needs clearly fewer multiplies than
                        im2col and measured faster: >= 16 channels in and out and outputs that
                        tile well. F(4x4, 3x3) for the reference CNN's 32->64 layer on 13x13
                        (all three passes) and its 64->64 layer on 5x5 (forward and data
                        gradient); F(2x2, 3x3) where F(4x4) does not pay but F(2x2) does
                        (weight gradients of more than ~4500 channel pairs); without AVX-512
                        the weight gradient wants >= 32 input channels; im2col GEMM
                        elsewhere;
      "gemm"            always im2col GEMM (results bitwise those of fastvision.ops.matmul);
      "winograd"        Winograd F(2x2, 3x3) wherever it applies;
      "winograd4"       Winograd F(4x4, 3x3) wherever it applies.

    F(2x2) does 2.25x and F(4x4) 4x fewer multiplies per output than im2col. Their rounding
    differs from im2col's (normwise within a small multiple of it; F(4x4)'s about 15x
    F(2x2)'s); a NaN input spreads over the 4x4 output tiles that read it with F(4x4) (F(2x2)
    keeps it to the outputs whose window holds it), and where an input holds +-inf, an output
    im2col gives as +-inf may come out NaN (inf - inf inside the transforms), as with other
    libraries' Winograd paths. Small integers give exact results on every path."""
    if not isinstance(algorithm, str):
        raise TypeError(f"set_conv_algorithm: algorithm must be a str, got "
                        f"{type(algorithm).__name__}")
    _C.set_conv_algorithm(algorithm)


def get_conv_algorithm() -> str:
    """The setting made by set_conv_algorithm: 'auto', 'gemm', 'winograd' or 'winograd4'."""
    return _C.get_conv_algorithm()


def empty_cache() -> None:
    """Give the cached free output buffers back to the OS.

    Large kernel outputs come from a caching allocator, so that a training step reuses warm
    memory instead of page-faulting fresh memory every step; freed buffers stay cached (up
    to 1 GiB) until this is called."""
    _C.empty_cache()


__all__ = ["empty_cache", "set_conv_algorithm", "get_conv_algorithm", "ops", "isa", "detected_isa", "set_isa", "available_isas", "get_num_threads",
           "set_num_threads", "__version__", "Tensor", "tensor", "zeros", "ones", "randn",
           "no_grad", "is_grad_enabled", "manual_seed", "nn", "optim", "training", "save", "load",
           "WeightsFileError"]
