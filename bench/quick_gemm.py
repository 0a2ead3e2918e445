"""Quick sgemm speed check against NumPy/OpenBLAS and PyTorch (square n x n x n).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. python bench/quick_gemm.py [n ...]

The contenders run interleaved, one call each per round, so load from other processes on a
shared machine hits them alike; printed: median GFLOP/s of each and the median over rounds
of the per-round time ratios. A few seconds; not a benchmark suite.
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
        rounds = 9 if n <= 1024 else 3
        times = {k: [] for k in fns}
        for r in range(rounds + 1):
            for k, f in fns.items():
                t = time.perf_counter()
                f()
                if r:  # round 0 warms up
                    times[k].append(time.perf_counter() - t)
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
