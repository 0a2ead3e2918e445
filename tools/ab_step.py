"""Per-step interleaved A/B of the reference CNN's training step (a developer tool).

    PYTHONPATH=. python tools/ab_step.py VAR [--epochs 8] [--images 12800]

Trains the reference model (fastvision.models.mnist_cnn, batch 64, Adam) on MNIST with a
callback that sets or clears the environment variable VAR before each step, by a seeded coin
toss, so steps with and without it interleave. Put a temporary `std::getenv("VAR")` (C++)
or `os.environ.get("VAR")` (Python) switch into the code under test: it picks variant B when
VAR is set. Reports both medians and the median of the paired differences: each B step
against the mean of the nearest A steps before and after it.

Why per step: this machine's speed moves between phases within a minute (its two vCPUs sit
close together or in different core complexes, and 2-thread steps take ~4.5 or ~5.8 ms), so
timing epochs or processes one after the other compares phases as much as code; a 100-step
round per variant gave +-0.5 ms. Interleaving steps puts both variants in the same phase.
Its noise floor, from null A/Bs (VAR read by nothing), is about 0.05 ms: they gave -0.08 to
+0.02 ms (strict alternation, -0.04 to +0.02: step times also have a period of two steps).
So trust differences of ~0.1 ms and up, and run it a few times: a change can pay in one phase
only.
"""

import argparse
import os
import time

import numpy as np

import fastvision as fv
from fastvision.datasets import mnist
from fastvision.models import mnist_cnn
from fastvision.training.callbacks import Callback


class Interleave(Callback):
    """Sets or clears `var` after each step (a seeded coin toss) and records (variant,
    seconds) per step."""

    def __init__(self, var):
        self.var, self.on, self.last, self.steps = var, False, None, []
        self.rng = np.random.default_rng(0)

    def on_train_batch_end(self, step, logs=None):
        now = time.perf_counter()
        if self.last is not None:
            self.steps.append((self.on, now - self.last))
        self.on = bool(self.rng.random() < 0.5)
        if self.on:
            os.environ[self.var] = "1"
        else:
            os.environ.pop(self.var, None)
        self.last = time.perf_counter()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("var", help="environment variable the code under test reads")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--images", type=int, default=12800, help="training images per epoch")
    p.add_argument("--data", default=os.environ.get("FASTVISION_DATA", "../shared/datasets"))
    args = p.parse_args(argv)
    data = os.path.join(args.data, "mnist") if os.path.isdir(os.path.join(args.data, "mnist")) \
        else args.data
    (x, y), _ = mnist.load_data(data)
    x = (x[:args.images].astype(np.float32) / 255)[:, None]
    y = y[:args.images]
    fv.manual_seed(0)
    model = mnist_cnn()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:640], y[:640], batch_size=64, epochs=1, verbose=0, seed=0)  # warm-up
    cb = Interleave(args.var)
    try:
        model.fit(x, y, batch_size=64, epochs=args.epochs, verbose=0, seed=0, callbacks=[cb])
    finally:
        os.environ.pop(args.var, None)
    on = np.array([o for o, _ in cb.steps])
    ms = np.array([s for _, s in cb.steps]) * 1e3
    a_at = np.flatnonzero(~on)
    d = []
    for i in np.flatnonzero(on):
        k = np.searchsorted(a_at, i)  # a_at[k - 1] < i < a_at[k]
        if 0 < k < len(a_at):
            d.append(ms[i] - (ms[a_at[k - 1]] + ms[a_at[k]]) / 2)
    d = np.array(d)
    print(f"{args.var} unset {np.median(ms[~on]):.3f} ms/step, set {np.median(ms[on]):.3f} "
          f"ms/step; paired median difference (set - unset) {np.median(d):+.3f} ms "
          f"(quartiles {np.percentile(d, 25):+.3f} .. {np.percentile(d, 75):+.3f}; "
          f"{len(d)} steps)")


if __name__ == "__main__":
    main()
