"""Weights files in the safetensors format (never pickle).

    fastvision.save(model.state_dict(), "model.safetensors")
    state = fastvision.load("model.safetensors")      # OrderedDict name -> float32 ndarray
    model.save_weights(path); model.load_weights(path, strict=True)

A file holds one tensor per state_dict key (torch's names: "0.weight", ...), so a file
written by torch's `safetensors.torch.save_file(model.state_dict(), path)` for the same
architecture loads too. A file that is missing, truncated, or not safetensors raises
WeightsFileError (a ValueError) naming the file; a file for another architecture raises
nn.StateDictError from load_state_dict, which checks every key and shape before writing:
either way the model is left unchanged.
"""

import json
import os
from collections import OrderedDict

import numpy as np

FORMAT = "fastvision"


class WeightsFileError(ValueError):
    """A weights file that cannot be read as safetensors."""


def _path(fn, path):
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{fn}: path must be a str or os.PathLike, got {type(path).__name__}")
    return os.fspath(path)


def save(state_dict, path, metadata=None):
    """Write `state_dict` (a mapping name -> array-like) to `path` as safetensors.

    The file is written to a temporary name next to `path` and renamed into place, so an
    interrupted save never leaves a half-written file under the final name.
    """
    from safetensors.numpy import save_file

    path = _path("save", path)
    if not hasattr(state_dict, "items"):
        raise TypeError(f"save: state_dict must be a mapping, got {type(state_dict).__name__}")
    tensors = {}
    for k, v in state_dict.items():
        if not isinstance(k, str):
            raise TypeError(f"save: state_dict keys must be str, got {type(k).__name__}")
        arr = np.asarray(v)
        if arr.dtype == object:
            raise TypeError(f"save: {k!r} is not a numeric array")
        tensors[k] = np.ascontiguousarray(arr)
    # safetensors stores tensors sorted by name; the key order is kept in the metadata so
    # that load() gives back the state_dict's order ("10.weight" sorts before "2.weight")
    meta = {"format": FORMAT, "keys": json.dumps(list(tensors))}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path):
    """The tensors of the safetensors file `path`, as an OrderedDict name -> ndarray in the
    file's order. FileNotFoundError if absent; WeightsFileError if it is not valid."""
    from safetensors import SafetensorError, safe_open

    path = _path("load", path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: {path} not found")
    try:
        with safe_open(path, framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, ValueError, OSError, TypeError) as e:
        raise WeightsFileError(f"load: {path} is not a valid safetensors file ({e})") from None
    try:
        order = json.loads(meta.get("keys", "null"))
    except ValueError:
        order = None
    if not isinstance(order, list) or sorted(order) != sorted(tensors):
        order = list(tensors)  # a file from elsewhere: the file's order
    return OrderedDict((k, tensors[k]) for k in order)
