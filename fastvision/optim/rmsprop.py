"""RMSprop with momentum and the centered variant (torch.optim.RMSprop)."""

from fastvision import ops
from fastvision.optim.optimizer import Optimizer, check_hparam


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check_group(self, g):
        for k in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            check_hparam("RMSprop", k, g[k])

    def _update(self, p, grad, g, state):
        if not state:
            state.update(step=0, square_avg=self._zeros(p))
        if g["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = self._zeros(p)
        if g["centered"] and "grad_avg" not in state:
            state["grad_avg"] = self._zeros(p)
        ops.rmsprop_step(p.data, grad, state["square_avg"], lr=g["lr"], alpha=g["alpha"],
                         eps=g["eps"], momentum=g["momentum"],
                         momentum_buf=state.get("momentum_buffer") if g["momentum"] > 0 else None,
                         centered=bool(g["centered"]),
                         grad_avg=state.get("grad_avg") if g["centered"] else None,
                         weight_decay=g["weight_decay"])
        state["step"] += 1  # after the kernel: a rejected step leaves the state as it was
