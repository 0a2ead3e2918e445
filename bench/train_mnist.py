"""The reference program (the Keras MNIST CNN, fastvision.models.mnist_cnn) trained side by
side with fastvision, PyTorch CPU and TensorFlow/Keras (when importable), in one run.

    PYTHONPATH=. python bench/train_mnist.py                      # 5 epochs, 60k images
    PYTHONPATH=. python bench/train_mnist.py --epochs 1 --limit 2000   # quick run

Same model (Conv2d 32/64/64 3x3, MaxPool 2, Linear 576-64-10, ReLU), same initial weights
(fastvision's Keras init, copied into torch), Adam lr 1e-3 (torch's eps convention, 1e-8, in
both, so the two runs follow the same trajectory up to rounding), batch 64, the same shuffled
order per epoch (fastvision's fit(seed=) permutations), 3 warm-up steps on a throwaway model
before timing, `--threads` threads for every library (torch.set_num_threads). The epochs are
interleaved: round e runs epoch e of every framework back to back, so a burst of load from
other tenants of this shared machine (they come and go over minutes) slows all frameworks
of a round rather than one framework's whole run. Reports the time of each epoch for each
framework, the ratio of mean epoch times to fastvision's and the median of the per-round
ratios (the robust one), the test accuracy of each (on the 10k test set), and for
fastvision the share of the training step spent outside the kernels: every `fastvision._C`
function and every `fastvision.ops` function is wrapped by a timer (about 1 us per call,
counted as "outside"), and the sum is compared with the wall time of the epochs. Writes
bench/results/train_mnist.md (and prints it).
"""

import argparse
import datetime
import functools
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import fastvision as fv  # noqa: E402
from fastvision import _C, ops  # noqa: E402
from fastvision.cli import load_mnist  # noqa: E402
from fastvision.models import mnist_cnn  # noqa: E402
from fastvision.training import Callback  # noqa: E402


LOAD_BEFORE = 0.0


class Timers:
    """Wraps module-level functions with perf_counter accumulators."""

    def __init__(self):
        self.total, self.calls, self._saved = {}, {}, []

    def wrap(self, module, names, tag):
        for name in names:
            fn = getattr(module, name)
            if not callable(fn):
                continue
            key = f"{tag}.{name}"
            self.total.setdefault(key, 0.0)  # wrapped again each epoch: totals carry on
            self.calls.setdefault(key, 0)

            def timed(*a, _fn=fn, _key=key, **kw):
                t = time.perf_counter()
                try:
                    return _fn(*a, **kw)
                finally:
                    self.total[_key] += time.perf_counter() - t
                    self.calls[_key] += 1
            functools.update_wrapper(timed, fn)
            self._saved.append((module, name, fn))
            setattr(module, name, timed)

    def restore(self):
        for module, name, fn in reversed(self._saved):
            setattr(module, name, fn)
        self._saved = []

    def sum(self, tag):
        return sum(v for k, v in self.total.items() if k.startswith(tag + "."))


class EpochTimes(Callback):
    """Epoch wall times, kept across fit calls (one call per epoch here)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


def orders(n, epochs, seed):
    rng = np.random.default_rng(seed)
    return [rng.permutation(n) for _ in range(epochs)]


# Each runner is a generator: it sets up (warm-up included) and yields, then trains one epoch
# per resumption (timed inside) and yields, and after the last epoch returns its result dict
# (StopIteration.value): main() interleaves the frameworks' epochs.
def run_fastvision(args, x, y, xs, ys, init_state):
    fv.set_num_threads(args.threads)
    warm = mnist_cnn()  # a few steps on a throwaway model: thread pool, caches, allocator
    warm.compile(fv.optim.Adam(warm.parameters(), lr=1e-3), "sparse_categorical_crossentropy")
    warm.fit(x[:3 * args.batch_size], y[:3 * args.batch_size], batch_size=args.batch_size,
             verbose=0, shuffle=False)
    model = mnist_cnn()
    model.load_state_dict(init_state)
    model.compile(fv.optim.Adam(model.parameters(), lr=1e-3), "sparse_categorical_crossentropy",
                  ["accuracy"])
    timers = Timers()
    kernel_names = [n for n in dir(_C) if not n.startswith("_") and n not in (
        "isa", "detected_isa", "set_isa", "get_num_threads", "set_num_threads")]
    et = EpochTimes()
    # One generator across the epochs' fit calls: fit(seed=) draws each epoch's permutation
    # from it (default_rng(generator) is that generator), so the orders are those of one
    # fit(epochs=E, seed=seed) call, and of orders() (the other frameworks' loops).
    rng = np.random.default_rng(args.seed)
    yield
    for epoch in range(args.epochs):
        timers.wrap(_C, kernel_names, "_C")  # only around fastvision's own epochs
        timers.wrap(ops, ops.__all__, "ops")
        try:
            h = model.fit(x, y, batch_size=args.batch_size, epochs=epoch + 1,
                          initial_epoch=epoch, verbose=args.verbose, seed=rng, callbacks=[et])
        finally:
            timers.restore()
        yield
    fit_s = float(np.sum(et.times))
    per_op = sorted(((k, v, timers.calls[k]) for k, v in timers.total.items()
                     if k.startswith("_C.") and timers.calls[k]), key=lambda r: -r[1])
    loss, acc = model.evaluate(xs, ys, batch_size=256, verbose=0)
    return dict(name="fastvision", epochs=et.times, train_loss=h.history["loss"][-1],
                train_acc=h.history["accuracy"][-1], test_acc=acc, fit_s=fit_s,
                in_c=timers.sum("_C"), in_ops=timers.sum("ops"), per_op=per_op)


def run_torch(args, x, y, xs, ys, init_state):
    import torch
    from torch import nn
    torch.set_num_threads(args.threads)

    def build():
        return nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
            nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))
    warm = build()  # the same warm-up as fastvision's, on a throwaway model
    wopt = torch.optim.Adam(warm.parameters(), lr=1e-3)
    for s in range(3):
        wopt.zero_grad()
        b = slice(s * args.batch_size, (s + 1) * args.batch_size)
        nn.functional.cross_entropy(warm(torch.from_numpy(x[b])), torch.from_numpy(y[b])).backward()
        wopt.step()
    model = build()
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in init_state.items()})
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    times, bs = [], args.batch_size
    yield
    for order in orders(len(x), args.epochs, args.seed):
        model.train()
        t = time.perf_counter()
        idx_all = torch.from_numpy(order)
        tot, correct = 0.0, 0
        for s in range(0, len(x), bs):
            idx = idx_all[s:s + bs]
            xb, yb = xt[idx], yt[idx]
            opt.zero_grad()
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
            correct += int((out.argmax(1) == yb).sum())
        times.append(time.perf_counter() - t)
        yield
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(xs[s:s + 256])).argmax(1)
                          for s in range(0, len(xs), 256)]).numpy()
    return dict(name=f"PyTorch {torch.__version__}", epochs=times, train_loss=tot / len(x),
                train_acc=correct / len(x), test_acc=float(np.mean(pred == ys)))


def run_keras(args, x, y, xs, ys):
    import tensorflow as tf  # noqa: F401  (ImportError: reported as not installed)
    from tensorflow import keras
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    keras.utils.set_random_seed(args.seed)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)), L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(64, 3, activation="relu"), L.Flatten(), L.Dense(64, activation="relu"),
        L.Dense(10)])
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    xh, xsh = x.transpose(0, 2, 3, 1), xs.transpose(0, 2, 3, 1)

    class T(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t)
    times = []
    yield
    for epoch in range(args.epochs):  # Keras's fit continues from initial_epoch
        h = model.fit(xh, y, batch_size=args.batch_size, epochs=epoch + 1, initial_epoch=epoch,
                      verbose=0, callbacks=[T()])
        yield
    _, acc = model.evaluate(xsh, ys, batch_size=256, verbose=0)
    return dict(name=f"TensorFlow {tf.__version__}", epochs=times,
                train_loss=h.history["loss"][-1], train_acc=h.history["accuracy"][-1],
                test_acc=acc)


def report(args, n_train, n_test, results, missing):
    fvr = results[0]
    ref = float(np.mean(fvr["epochs"]))
    lines = [
        "# MNIST CNN training: fastvision vs PyTorch (vs TensorFlow/Keras)", "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        f"- command: `PYTHONPATH=. python bench/train_mnist.py {' '.join(sys.argv[1:])}`",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
        f"CPUs visible; fastvision isa {fv.isa()}, {args.threads} threads for every library",
        f"- data: {n_train} training images, {n_test} test images; batch {args.batch_size}, "
        f"{args.epochs} epoch(s), Adam lr 1e-3, same initial weights and sample order",
        f"- load average (1 min) before / after: {LOAD_BEFORE:.2f} / {os.getloadavg()[0]:.2f} "
        f"(the machine is shared: a load above 0 means other processes competed for the "
        f"cores and the times are noisy; rerun on a quiet machine)", "",
        "| framework | " + " | ".join(f"epoch {i + 1} (s)" for i in range(args.epochs))
        + " | mean epoch (s) | time / fastvision (means) | time / fastvision (median of "
        "rounds) | fastvision's time as a fraction (median) | final train loss | train acc "
        "| test acc |",
        "|---" * (args.epochs + 8) + "|"]
    for r in results:
        mean = float(np.mean(r["epochs"]))
        rounds = float(np.median(np.asarray(r["epochs"]) / np.asarray(fvr["epochs"])))
        lines.append(f"| {r['name']} | " + " | ".join(f"{t:.2f}" for t in r["epochs"])
                     + f" | {mean:.2f} | {mean / ref:.2f} | {rounds:.2f} | {1 / rounds:.2f}x | "
                     f"{r['train_loss']:.4f} | {r['train_acc']:.4f} | {r['test_acc']:.4f} |")
    for name, why in missing:
        lines.append(f"| {name} | " + " | ".join("-" for _ in range(args.epochs + 7))
                     + f" |  ({why})")
    lines += ["", "Epochs are interleaved (round e: epoch e of each framework, back to back); "
              "the per-round ratio compares epochs run within a minute of each other."]
    fit = fvr["fit_s"]
    steps = args.epochs * -(-n_train // args.batch_size)
    lines += ["", "## fastvision: where the training step time goes", "",
              f"- epochs' wall time: {fit:.2f} s ({steps} steps, {1e3 * fit / steps:.2f} ms/step, "
              f"of which {1e3 * (fit - fvr['in_c']) / steps:.2f} ms outside kernels)",
              f"- inside kernels (`fastvision._C` calls): {fvr['in_c']:.2f} s "
              f"({100 * fvr['in_c'] / fit:.1f}%)",
              f"- inside `fastvision.ops` (argument checks + kernels): {fvr['in_ops']:.2f} s "
              f"({100 * fvr['in_ops'] / fit:.1f}%)",
              f"- **outside kernels** (autograd graph, modules, fit loop, batching, metrics, "
              f"timers): {fit - fvr['in_c']:.2f} s (**{100 * (fit - fvr['in_c']) / fit:.1f}%** "
              f"of the step time)", "",
              "| kernel | calls | total (s) | share of fit |", "|---|---|---|---|"]
    for k, v, c in fvr["per_op"]:
        lines.append(f"| {k[3:]} | {c} | {v:.3f} | {100 * v / fit:.1f}% |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--limit", type=int, help="use the first N training images")
    p.add_argument("--test-limit", type=int, help="use the first N test images")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="MNIST directory (default: $FASTVISION_DATA)")
    p.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2))
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "train_mnist.md"))
    args = p.parse_args(argv)
    global LOAD_BEFORE
    LOAD_BEFORE = os.getloadavg()[0]
    (x, y), (xs, ys) = load_mnist(args.data, False, args.limit, args.test_limit)
    fv.manual_seed(args.seed)
    init_state = mnist_cnn().state_dict()
    runners, missing = [run_fastvision(args, x, y, xs, ys, init_state)], []
    candidates = [("PyTorch", lambda: run_torch(args, x, y, xs, ys, init_state))]
    if args.no_torch:
        missing.append(("PyTorch", "skipped: --no-torch"))
        candidates = []
    candidates.append(("TensorFlow/Keras", lambda: run_keras(args, x, y, xs, ys)))
    next(runners[0])  # set up (and warm up) each framework before any timing
    for name, make in candidates:
        gen = make()
        try:
            next(gen)
        except ImportError:
            missing.append((name, "not installed"))
            continue
        runners.append(gen)
    for _ in range(args.epochs):  # round e: epoch e of each framework
        for gen in runners:
            next(gen)
    results = []
    for gen in runners:
        try:
            next(gen)
        except StopIteration as done:
            results.append(done.value)
    text = report(args, len(x), len(xs), results, missing)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
