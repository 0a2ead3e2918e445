"""Optimizer base class (torch.optim.Optimizer's interface).

param_groups is a list of dicts: "params" (a list of Parameters) plus the hyper-parameters,
with torch's key names, filled from the optimizer's defaults. state maps each parameter to
its dict of buffers (float32 arrays, updated in place by the fused kernels in
fastvision.ops) and "step" (an int). step() visits every parameter that has a .grad and calls
the subclass's `_update(p, grad, group, state)`. state_dict() / load_state_dict() use torch's
layout: {"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}, indices
numbering the parameters in group order; arrays are copied both ways.
"""

import numbers

import numpy as np

from fastvision.tensor import Tensor


def check_hparam(opt, name, value, low=0.0, high=None, high_open=False):
    """ValueError unless low <= value (< or <=) high; TypeError for non-numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{opt}: {name} must be a real number, got {type(value).__name__}")
    too_high = high is not None and (value >= high if high_open else value > high)
    if not value >= low or too_high:
        rng = f"[{low}, {high}{')' if high_open else ']'}" if high is not None else f">= {low}"
        raise ValueError(f"{opt}: invalid {name}: {value} (must be {rng})")


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or "
                            "dicts, got a Tensor")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def _check_group(self, group):
        """Subclasses validate the hyper-parameters of a group (ValueError)."""

    def add_param_group(self, param_group):
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a param group must be a dict, "
                            f"got {type(param_group).__name__}")
        group = dict(param_group)
        ps = group.get("params")
        ps = [ps] if isinstance(ps, Tensor) else list(ps or [])
        for i, p in enumerate(ps):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: params[{i}] must be a Tensor, got {type(p).__name__}")
            d = p.data
            if not (d.dtype == np.float32 and d.flags.c_contiguous and d.flags.writeable):
                raise TypeError(f"{name}: params[{i}] must hold a writeable C-contiguous float32 "
                                "array (it is updated in place)")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in ps}) != len(ps) or any(id(p) in existing for p in ps):
            raise ValueError(f"{name}: some parameters appear more than once in the param groups")
        group["params"] = ps
        for k, v in self.defaults.items():
            group.setdefault(k, v)
        self._check_group(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.data.fill(0)

    def step(self):
        # every gradient is checked before any parameter moves, so a bad one changes nothing
        for group in self.param_groups:
            for i, p in enumerate(group["params"]):
                if p.grad is not None and p.grad.shape != p.shape:
                    raise ValueError(f"{type(self).__name__}: params[{i}].grad must have the "
                                     f"parameter's shape {p.shape}, got {p.grad.shape}")
        for group in self.param_groups:
            self._step_group(group)

    def _step_group(self, group):
        """One group's update, parameter by parameter (subclasses may update the whole group
        in one call instead)."""
        for p in group["params"]:
            if p.grad is None:
                continue
            self._update(p, self._grad(p, group), group, self.state.setdefault(p, {}))

    @staticmethod
    def _grad(p, group):
        return -p.grad.data if group.get("maximize", False) else p.grad.data

    def _update(self, p, grad, group, state):
        raise NotImplementedError

    @staticmethod
    def _zeros(p):
        return np.zeros(p.shape, dtype=np.float32)

    # --- state ---
    def _params(self):
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self):
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        groups = [dict({k: v for k, v in g.items() if k != "params"},
                       params=[index[id(p)] for p in g["params"]]) for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Checks group count/sizes and buffer shapes first; nothing changes on error."""
        name = type(self).__name__
        groups, saved = self.param_groups, state_dict["param_groups"]
        if len(groups) != len(saved):
            raise ValueError(f"{name}: loaded state dict has {len(saved)} parameter groups, "
                             f"the optimizer has {len(groups)}")
        for i, (g, s) in enumerate(zip(groups, saved)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"{name}: param group {i} has {len(g['params'])} parameters, "
                                 f"the loaded one {len(s['params'])}")
        index = {}
        for g, s in zip(groups, saved):
            index.update(zip(s["params"], g["params"]))
        new_state = {}
        for k, buffers in state_dict["state"].items():
            if k not in index:
                raise ValueError(f"{name}: loaded state refers to unknown parameter {k}")
            p, entry = index[k], {}
            for key, v in buffers.items():
                if key == "step" or not hasattr(v, "shape"):
                    entry[key] = int(v) if key == "step" else v
                    continue
                # via asarray: np.array(torch_tensor, dtype=) warns under NumPy 2
                arr = np.array(np.asarray(v), dtype=np.float32, order="C")
                if arr.shape != p.shape:
                    raise ValueError(f"{name}: state[{k}][{key!r}] has shape {arr.shape}, the "
                                     f"parameter has shape {p.shape}")
                entry[key] = arr
            new_state[p] = entry
        for g, s in zip(groups, saved):
            g.update({k: v for k, v in s.items() if k != "params"})
        self.state = new_state

    def __repr__(self):
        s = type(self).__name__ + " ("
        for i, g in enumerate(self.param_groups):
            s += f"\nParameter Group {i}"
            for k in sorted(k for k in g if k != "params"):
                s += f"\n    {k}: {g[k]}"
        return s + "\n)"
