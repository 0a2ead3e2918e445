"""Adam (with amsgrad, L2 weight decay) and AdamW (decoupled weight decay), torch.optim's.

eps_convention selects where eps enters the denominator:
  "torch" (default): denom = sqrt(v) / sqrt(1 - beta2^t) + eps       (torch.optim.Adam)
  "keras":           denom = (sqrt(v) + eps) / sqrt(1 - beta2^t)     (tf.keras Adam: eps is
                     "epsilon hat", added to the uncorrected sqrt(v))
The keras form equals the torch form with eps / sqrt(1 - beta2^t) as the per-step eps (see
fastvision.ops.adam_step), which is what is passed to the kernel. Keras's default epsilon is
1e-7: pass eps=1e-7 too to reproduce a Keras run. The two differ while sqrt(v) is comparable
to eps (early steps, tiny gradients) and agree closely afterwards.

foreach (torch's flag): None or True updates each param group's tensors in one call
(ops.adam_step_foreach: one parallel region, one pass of argument checks; on the reference
CNN's 10 tensors a whole optimizer step measured 83 -> 57 us), False one call per tensor. The
same bits either way.
"""

import math

from fastvision import ops
from fastvision.optim.optimizer import Optimizer, check_hparam


class Adam(Optimizer):
    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, foreach=None, maximize=False, eps_convention="torch"):
        if eps_convention not in ("torch", "keras"):
            raise ValueError(f"{type(self).__name__}: eps_convention must be 'torch' or "
                             f"'keras', got {eps_convention!r}")
        if foreach is not None and not isinstance(foreach, bool):
            raise TypeError(f"{type(self).__name__}: foreach must be None or a bool, "
                            f"got {foreach!r}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      foreach=foreach, maximize=maximize,
                                      eps_convention=eps_convention))

    def _check_group(self, g):
        name = type(self).__name__
        for k in ("lr", "eps", "weight_decay"):
            check_hparam(name, k, g[k])
        if len(g["betas"]) != 2:
            raise ValueError(f"{name}: betas must be a pair, got {g['betas']!r}")
        for i, b in enumerate(g["betas"]):
            check_hparam(name, f"beta parameter at index {i}", b, 0.0, 1.0, high_open=True)

    def _prepare(self, p, g, state):
        """Creates p's buffers on its first step; its next step count and that step's eps."""
        if not state:
            state.update(step=0, exp_avg=self._zeros(p), exp_avg_sq=self._zeros(p))
        if g["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = self._zeros(p)
        t = state["step"] + 1
        eps = g["eps"]
        if g.get("eps_convention", "torch") == "keras":
            eps = eps / math.sqrt(1.0 - g["betas"][1] ** t)
        return t, eps

    def _update(self, p, grad, g, state):
        t, eps = self._prepare(p, g, state)
        beta1, beta2 = g["betas"]
        ops.adam_step(p.data, grad, state["exp_avg"], state["exp_avg_sq"], step=t, lr=g["lr"],
                      beta1=beta1, beta2=beta2, eps=eps, weight_decay=g["weight_decay"],
                      amsgrad=bool(g["amsgrad"]), v_max=state.get("max_exp_avg_sq"),
                      decoupled_weight_decay=self._decoupled)
        state["step"] = t  # after the kernel: a rejected step leaves the state as it was

    def _step_group(self, g):
        if g.get("foreach") is False:
            return super()._step_group(g)
        ps = [p for p in g["params"] if p.grad is not None]
        if not ps:
            return
        states = [self.state.setdefault(p, {}) for p in ps]
        steps, eps = zip(*[self._prepare(p, g, s) for p, s in zip(ps, states)])
        beta1, beta2 = g["betas"]
        amsgrad = bool(g["amsgrad"])
        ops.adam_step_foreach(
            [p.data for p in ps], [self._grad(p, g) for p in ps],
            [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
            steps=list(steps), lr=g["lr"], beta1=beta1, beta2=beta2, eps=list(eps),
            weight_decay=g["weight_decay"], amsgrad=amsgrad,
            v_maxs=[s["max_exp_avg_sq"] for s in states] if amsgrad else None,
            decoupled_weight_decay=self._decoupled)
        for s, t in zip(states, steps):  # after the kernel, as in _update
            s["step"] = t


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam step."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, foreach=None, maximize=False, eps_convention="torch"):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, eps_convention=eps_convention)
