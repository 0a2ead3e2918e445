"""Quick sgemm speed check against NumPy/OpenBLAS and PyTorch (square n x n x n).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. python bench/quick_gemm.py [n ...]

The contenders take turns, a few calls each per round, so load from other processes on a
shared machine hits them alike. Before each turn the script sleeps 0.3 s: OpenBLAS and
OpenMP worker threads spin for a while after a call and would otherwise steal the cores from
whoever runs next (interleaving single calls made fastvision look ~30% slower than it is).
Printed: GFLOP/s of each (median over rounds of the median call of the turn) and the
median over rounds of the per-round time ratios.
About a minute; not a benchmark suite.
"""
import sys
import time

import numpy as np

import fastvision as fv


def main():
    args = sys.argv[1:]
    if args and args[0].startswith("--threads="):  # numpy: also set OPENBLAS_NUM_THREADS
        fv.set_num_threads(int(args.pop(0).split("=")[1]))
    sizes = [int(s) for s in args] or [1024, 4096]
    try:
        import torch
        torch.set_num_threads(fv.get_num_threads())
    except ImportError:
        torch = None
    isas = fv.available_isas()[1:] or ["scalar"]
    for n in sizes:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        fns = {"numpy": lambda: a @ b}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            fns["torch"] = lambda: ta @ tb
        for isa in isas:
            fns[f"fv[{isa}]"] = (lambda isa=isa: (fv.set_isa(isa), fv.ops.matmul(a, b)))
        rounds, calls = (7, 5) if n <= 1024 else (3, 2)
        times = {k: [] for k in fns}
        for r in range(rounds + 1):
            for k, f in fns.items():
                time.sleep(0.3)
                f()  # one untimed call: wakes the threads, warms the caches
                ts = []
                for _ in range(calls):
                    t = time.perf_counter()
                    f()
                    ts.append(time.perf_counter() - t)
                if r:  # round 0 warms up
                    times[k].append(float(np.median(ts)))
        fv.set_isa(fv.detected_isa())
        gf = 2.0 * n ** 3 / 1e9
        med = {k: float(np.median(v)) for k, v in times.items()}
        line = f"n={n} threads={fv.get_num_threads()} " + "  ".join(
            f"{k} {gf / t:6.1f}" for k, t in med.items()) + " GF/s |"
        for k in fns:
            if k.startswith("fv"):
                for base in ("numpy", "torch"):
                    if base in times:
                        ratio = np.median(np.array(times[base]) / np.array(times[k]))
                        line += f" {k}/{base} {ratio:.2f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
