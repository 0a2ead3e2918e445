"""SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD)."""

from fastvision import ops
from fastvision.optim.optimizer import Optimizer, check_hparam


class SGD(Optimizer):
    """torch.optim.SGD: d = grad + wd * p; buf = momentum * buf + (1 - dampening) * d (buf = d
    on the first step); d = d + momentum * buf (nesterov) or buf; p -= lr * d."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check_group(self, g):
        for k in ("lr", "momentum", "dampening", "weight_decay"):
            check_hparam("SGD", k, g[k])
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")

    def _update(self, p, grad, g, state):
        buf, first = None, False
        if g["momentum"] != 0:
            buf = state.get("momentum_buffer")
            first = buf is None
            if first:
                buf = self._zeros(p)
        ops.sgd_step(p.data, grad, buf, lr=g["lr"], momentum=g["momentum"],
                     dampening=g["dampening"], nesterov=bool(g["nesterov"]),
                     weight_decay=g["weight_decay"], first_step=first)
        if first:  # stored only after the kernel accepted the step
            state["momentum_buffer"] = buf
