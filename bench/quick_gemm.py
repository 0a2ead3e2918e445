"""Quick sgemm speed check against NumPy/OpenBLAS and PyTorch, ratios in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. python bench/quick_gemm.py [sizes]

Median of repeats, GFLOP/s. Not a benchmark suite: a few seconds, on a shared machine.
"""
import sys
import time

import numpy as np

import fastvision as fv


def median_time(f, reps):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return sorted(ts)[len(ts) // 2]


def main():
    sizes = [int(s) for s in sys.argv[1:]] or [1024, 4096]
    isas = [fv.isa()] if "FV_ONLY_ACTIVE" in __import__("os").environ else fv.available_isas()[1:]
    try:
        import torch
        torch.set_num_threads(fv.get_num_threads())
    except ImportError:
        torch = None
    for n in sizes:
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        reps = 9 if n <= 1024 else 3
        gf = 2.0 * n ** 3 / 1e9
        t_np = median_time(lambda: a @ b, reps)
        line = f"n={n} threads={fv.get_num_threads()} numpy {gf / t_np:6.1f} GF/s"
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            t_t = median_time(lambda: ta @ tb, reps)
            line += f"  torch {gf / t_t:6.1f}"
        for isa in isas:
            fv.set_isa(isa)
            t_fv = median_time(lambda: fv._C.matmul(a, b), reps)
            line += f"  fv[{isa}] {gf / t_fv:6.1f} ({t_np / t_fv:.2f}x numpy"
            if torch is not None:
                line += f", {t_t / t_fv:.2f}x torch"
            line += ")"
        fv.set_isa(fv.detected_isa())
        print(line, flush=True)


if __name__ == "__main__":
    main()
