"""Interleaved A/B of kernels from two builds in one process (a developer tool).

    PYTHON=.venv/bin/python tools/ab_build.sh old    # the baseline tree (e.g. after git stash)
    PYTHON=.venv/bin/python tools/ab_build.sh new    # the change
    .venv/bin/python tools/ab_kernels.py [--threads 2] [--rounds 30] [--cases conv,pool,conv1]

Loads build/ab/old and build/ab/new's compiled modules side by side (as old._C and new._C),
checks that both give the same bits on each case, then times them in alternating rounds of
five calls each (first call of a round discarded: the other build's pool may still spin) and
prints the medians and new/old. Why: on a shared 2-vCPU host, timing builds in separate
processes compared the host's phases as much as the code (conv2's forward moved 1.7 - 3.0 ms
between processes); interleaved in one process, repeated runs agreed within a few percent.
"""

import argparse
import glob
import importlib.util
import os
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "ab")


def load(tag):
    path = glob.glob(os.path.join(ROOT, tag, "fastvision", "_C*.so"))[0]
    spec = importlib.util.spec_from_file_location(f"{tag}._C", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_cases(A, groups, rng):
    cases = {}

    def conv(name, C, H, O):
        x = rng.standard_normal((64, C, H, H), dtype=np.float32)
        w = rng.standard_normal((O, C, 3, 3), dtype=np.float32) * 0.1
        b = np.zeros(O, np.float32)
        one, zero = [1, 1], [0, 0]
        y = A.conv2d_relu(x, w, b, one, zero, one, 1)
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        cases[name + " fwd"] = lambda m: m.conv2d_relu(x, w, b, one, zero, one, 1)
        cases[name + " bwd"] = lambda m: m.conv2d_backward(gy, x, w, one, zero, one, 1,
                                                           True, True, True)
        if H > 6:
            cases[name + "+pool fwd"] = lambda m: m.conv2d_relu_max_pool2d_2x2(x, w, b, one, zero,
                                                                               one, 1)
            # the training step's backward: relu'd pool codes; conv1 (C == 1) wants no grad_x
            pooled, codes = A.conv2d_relu_max_pool2d_2x2(x, w, b, one, zero, one, 1)
            gp = rng.standard_normal(pooled.shape, dtype=np.float32)
            cases[name + "+pool bwd"] = lambda m: m.conv2d_max_pool2d_2x2_backward(
                gp, codes, pooled, x, w, one, zero, one, 1, C > 1, True, True)

    def pool(name, shape):
        x = np.maximum(rng.standard_normal(shape, dtype=np.float32), 0)
        y, codes = A.max_pool2d_2x2(x)
        gy = rng.standard_normal(y.shape, dtype=np.float32)
        cases[name + " fwd"] = lambda m: m.max_pool2d_2x2(x)
        cases[name + " bwd"] = lambda m: m.max_pool2d_2x2_backward(gy, codes, list(shape), y)

    if "conv" in groups:
        conv("conv2", 32, 13, 64)   # the reference CNN's layers, batch 64
        conv("conv3", 64, 5, 64)
    if "conv1" in groups:
        conv("conv1", 1, 28, 32)
    if "pool" in groups:
        pool("pool1", (64, 32, 26, 26))
        pool("pool2", (64, 64, 11, 11))
    return cases


def same_bits(ra, rb):
    ra = ra if isinstance(ra, (tuple, list)) else (ra,)
    rb = rb if isinstance(rb, (tuple, list)) else (rb,)
    return all(np.array_equal(np.asarray(p), np.asarray(q), equal_nan=True)
               for p, q in zip(ra, rb) if p is not None)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--cases", default="conv", help="comma-separated: conv, conv1, pool")
    args = p.parse_args()
    A, B = load("old"), load("new")
    for m in (A, B):
        m.set_num_threads(args.threads)
    cases = make_cases(A, args.cases.split(","), np.random.default_rng(0))
    for name, f in cases.items():
        bits = "same" if same_bits(f(A), f(B)) else "DIFFER"
        ta, tb = [], []
        for r in range(args.rounds):
            for m, ts in ((A, ta), (B, tb)) if r % 2 == 0 else ((B, tb), (A, ta)):
                f(m)
                for _ in range(5):
                    t = time.perf_counter()
                    f(m)
                    ts.append(time.perf_counter() - t)
        ma, mb = np.median(ta) * 1e3, np.median(tb) * 1e3
        print(f"{name:16s} old {ma:7.3f}  new {mb:7.3f} ms  new/old {mb / ma:5.3f}  "
              f"(min {np.min(tb) / np.min(ta):5.3f})  bits {bits}")


if __name__ == "__main__":
    main()
