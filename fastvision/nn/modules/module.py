"""Module: the base class of layers and models (torch.nn.Module's essentials).

Assigning a Parameter or a Module to an attribute registers it, in order; parameters(),
named_parameters() ("0.weight", "0.bias", ... as torch), children(), modules(), train() /
eval() (the `training` flag), zero_grad(), state_dict() / load_state_dict() and a torch-like
repr follow. state_dict() returns copies as NumPy arrays, keyed like torch's, so a torch
state_dict converted with `{k: v.numpy() for k, v in sd.items()}` loads (no transposes:
conv weights are OIHW and linear weights (out, in) in both).
"""

from collections import OrderedDict, namedtuple

import numpy as np

from fastvision.nn.parameter import Parameter
from fastvision.training.model import TrainingMixin

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(ValueError, RuntimeError):
    """A state_dict that does not fit the model (torch raises RuntimeError; this is both)."""


def _addindent(s, n):
    lines = s.split("\n")
    return lines[0] if len(lines) == 1 else "\n".join([lines[0]] + [" " * n + l for l in lines[1:]])


class Module(TrainingMixin):
    # TrainingMixin adds Keras-style compile / fit / evaluate / predict / save_weights /
    # load_weights (fastvision/training/model.py)
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration ---
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("Module.__init__() must be called before assigning attributes")
        params, mods = self.__dict__["_parameters"], self.__dict__["_modules"]
        for d in (params, mods, self.__dict__):
            d.pop(name, None)
        if isinstance(value, Parameter) or (value is None and name in params):
            params[name] = value
        elif isinstance(value, Module):
            mods[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        d = self.__dict__
        for key in ("_parameters", "_modules"):
            if key in d and name in d[key]:
                return d[key][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for key in ("_parameters", "_modules"):
            if name in self.__dict__[key]:
                del self.__dict__[key][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name} must be a Parameter or None, "
                            f"got {type(param).__name__}")
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name} must be a Module, got {type(module).__name__}")
        self.__dict__.pop(name, None)
        self._modules[name] = module

    # --- traversal ---
    def named_modules(self, prefix=""):
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield name, m
            kids = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items()
                    if c is not None]
            stack.extend(reversed(kids))  # pre-order, registration order

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        for k, c in self._modules.items():
            if c is not None:
                yield k, c

    def children(self):
        for _, c in self.named_children():
            yield c

    def _named_parameters_all(self):
        """Every (key, Parameter) in state_dict order, duplicates (shared params) included."""
        for name, m in self.named_modules():
            for k, p in m._parameters.items():
                if p is not None:
                    yield (f"{name}.{k}" if name else k), p

    def named_parameters(self, prefix="", recurse=True):
        seen = set()
        items = self._named_parameters_all() if recurse else (
            (k, p) for k, p in self._parameters.items() if p is not None)
        for k, p in items:
            if id(p) not in seen:
                seen.add(id(p))
                yield (f"{prefix}.{k}" if prefix else k), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    # --- modes and grads ---
    def train(self, mode=True):
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data.fill(0)

    # --- state ---
    def state_dict(self):
        """OrderedDict key -> float32 NumPy copy of each parameter."""
        return OrderedDict((k, p.data.copy()) for k, p in self._named_parameters_all())

    def load_state_dict(self, state_dict, strict=True):
        """Copy values into the parameters. Every key, shape and dtype is checked first; on
        any error nothing is written and StateDictError (a ValueError and RuntimeError) lists
        the offending keys. Non-strict ignores missing/unexpected keys (returned) but not
        shape mismatches, as torch."""
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"load_state_dict: expected a mapping, got {type(state_dict).__name__}")
        own = OrderedDict(self._named_parameters_all())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and unexpected:
            errors.append("Unexpected key(s) in state_dict: " + ", ".join(map(repr, unexpected)))
        if strict and missing:
            errors.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        values = []
        for k, p in own.items():
            if k not in state_dict:
                continue
            try:
                arr = np.asarray(state_dict[k])
            except Exception as e:
                errors.append(f"{k!r}: cannot convert {type(state_dict[k]).__name__} to an "
                              f"array ({e})")
                continue
            if arr.dtype.kind != "f":
                errors.append(f"{k!r}: expected a floating-point array, got dtype {arr.dtype}")
            elif arr.shape != p.shape:
                errors.append(f"size mismatch for {k!r}: copying a param with shape "
                              f"{arr.shape} from checkpoint, the shape in current model is "
                              f"{p.shape}")
            else:
                values.append((p, arr))
        if errors:
            raise StateDictError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                                 + "\n\t".join(errors))
        for p, arr in values:
            np.copyto(p.data, arr, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # --- calling and printing ---
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self):
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({k}): {_addindent(repr(m), 2)}" for k, m in self._modules.items()]
        lines = extra_lines + child_lines
        s = type(self).__name__ + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                s += extra_lines[0]
            else:
                s += "\n  " + "\n  ".join(lines) + "\n"
        return s + ")"
