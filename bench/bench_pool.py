"""Quick max-pool speed check against torch at the reference CNN's shapes (same process,
median of repeats; GB/s counts the bytes each op must move: forward x + y + indices,
backward grad_y + indices + grad_x), at 1 thread and at the default thread count.
Usage: PYTHONPATH=. python bench/bench_pool.py   (FASTVISION_ISA=avx2 for another level)"""

import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch's spinning OpenMP workers starve ours on 2 cores

import numpy as np
import torch
import torch.nn.functional as F

import fastvision as fv


def median_time(fn, reps=30):
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main():
    for n in sorted({1, fv.get_num_threads()}):
        fv.set_num_threads(n)
        torch.set_num_threads(n)
        run()


def run():
    rng = np.random.default_rng(0)
    print(f"isa={fv.isa()} threads={fv.get_num_threads()} torch={torch.__version__}")
    for shape in [(64, 32, 26, 26), (64, 64, 11, 11)]:
        x = rng.standard_normal(shape).astype(np.float32)
        y, idx = fv.ops.max_pool2d(x, 2, return_indices=True)
        gy = rng.standard_normal(y.shape).astype(np.float32)
        fwd_bytes = x.nbytes + y.nbytes + idx.nbytes
        bwd_bytes = gy.nbytes + idx.nbytes + x.nbytes
        tx = torch.from_numpy(x)
        tcl = tx.contiguous(memory_format=torch.channels_last)
        tgy = torch.from_numpy(gy)
        res = {}
        res["fv fwd"] = median_time(lambda: fv.ops.max_pool2d(x, 2, return_indices=True))
        res["fv fwd (no idx)"] = median_time(lambda: fv.ops.max_pool2d(x, 2))
        for name, t in (("nchw", tx), ("cl", tcl)):
            res[f"torch fwd {name}"] = median_time(lambda: F.max_pool2d(t, 2, return_indices=True))
            res[f"torch fwd {name} (no idx)"] = median_time(lambda: F.max_pool2d(t, 2))
        res["fv bwd"] = median_time(lambda: fv.ops.max_pool2d_backward(gy, idx, shape))
        for name, t in (("nchw", tx), ("cl", tcl)):
            ty, ti = F.max_pool2d(t, 2, return_indices=True)
            g = tgy if name == "nchw" else tgy.contiguous(memory_format=torch.channels_last)
            res[f"torch bwd {name}"] = median_time(
                lambda: torch.ops.aten.max_pool2d_with_indices_backward(g, t, [2, 2], [2, 2], [0, 0],
                                                                        [1, 1], False, ti))
        print(shape)
        for k, v in res.items():
            nbytes = bwd_bytes if "bwd" in k else fwd_bytes - (idx.nbytes if "no idx" in k else 0)
            print(f"  {k:26s} {v * 1e6:8.1f} us  {nbytes / v / 1e9:6.1f} GB/s")
        for d in ("fwd", "bwd"):
            best = min(v for k, v in res.items() if k.startswith(f"torch {d}") and "no idx" not in k)
            print(f"  speedup {d} vs best torch: {best / res[f'fv {d}']:.2f}x")


if __name__ == "__main__":
    main()
