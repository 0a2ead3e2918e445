"""Quick conv2d timing against torch in the same process (median of repeats, ratios).

    PYTHONPATH=. python bench/bench_conv.py [--threads 2] [--repeats 15] [--algo auto,gemm,winograd,winograd4]
                                            [--shapes reference|common] [--batch 64]
Shapes: the reference CNN's 3x3 stride-1 layers (no padding), or common 3x3 'same' layers
(VGG/ResNet-like: 64->64 on 32x32 ... 64->128 on 56x56; try --batch 16). Ratio = torch time /
ours (> 1: we are faster). torch is the best of NCHW and channels_last. --algo runs our side
once per fastvision.set_conv_algorithm setting (what auto's Winograd choices were measured
with).
"""

import argparse
import os
import time

import numpy as np

import fastvision as fv

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch's spinning OpenMP workers starve ours on 2 cores


def median_times(fns, repeats):
    """Median time of each fn; the fns run interleaved so machine-load drift hits all alike."""
    for fn in fns:
        fn()
    ts = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t_list in zip(fns, ts):
            t = time.perf_counter()
            fn()
            t_list.append(time.perf_counter() - t)
    return [float(np.median(t)) for t in ts]


# (in channels, out channels, height = width, padding)
SHAPES = {
    "reference": [(1, 32, 28, 0), (32, 64, 13, 0), (64, 64, 5, 0)],
    "common": [(16, 32, 28, 1), (64, 64, 32, 1), (128, 128, 16, 1), (256, 256, 8, 1),
               (64, 128, 56, 1)],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--algo", default="auto", help="comma-separated conv algorithms to time")
    ap.add_argument("--shapes", default="reference", choices=("reference", "common"))
    args = ap.parse_args()
    for algo in args.algo.split(","):
        fv.set_conv_algorithm(algo)
        print(f"conv algorithm: {algo}")
        run(args)


def run(args):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    fv.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"isa={fv.isa()} threads={args.threads} batch={args.batch}")
    shapes = SHAPES[args.shapes]
    for cin, cout, hw, pad in shapes:
        x = rng.standard_normal((args.batch, cin, hw, hw)).astype(np.float32)
        w = rng.standard_normal((cout, cin, 3, 3)).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        oh = hw + 2 * pad - 2
        gy = rng.standard_normal((args.batch, cout, oh, oh)).astype(np.float32)
        xt, wt, bt, gyt = map(torch.from_numpy, (x, w, b, gy))
        xcl = xt.contiguous(memory_format=torch.channels_last)
        need_x = cin > 1

        def torch_bwd():
            torch.ops.aten.convolution_backward(gyt, xt, wt, [cout], [1, 1], [pad, pad],
                                                [1, 1], False, [0, 0], 1, [need_x, True, True])

        with torch.no_grad():
            t_nchw, t_cl, t_fv, t_fvr, t_tb, t_fb = median_times([
                lambda: F.conv2d(xt, wt, bt, 1, pad),
                lambda: F.conv2d(xcl, wt, bt, 1, pad),
                lambda: fv.ops.conv2d(x, w, b, 1, pad),
                lambda: fv.ops.conv2d_relu(x, w, b, 1, pad),
                torch_bwd,
                lambda: fv.ops.conv2d_backward(gy, x, w, 1, pad, need_input_grad=need_x),
            ], args.repeats)
        best = min(t_nchw, t_cl)
        print(f"{cin:3d}->{cout:3d} {hw:2d}x{hw:2d}  fwd: torch nchw {t_nchw*1e3:7.2f} ms, "
              f"cl {t_cl*1e3:7.2f} ms, ours {t_fv*1e3:7.2f} ms (relu fused {t_fvr*1e3:7.2f}) "
              f"ratio {best/t_fv:5.2f}x | bwd{'' if need_x else ' (no grad_x)'}: torch "
              f"{t_tb*1e3:7.2f} ms, ours {t_fb*1e3:7.2f} ms ratio {t_tb/t_fb:5.2f}x")


if __name__ == "__main__":
    main()
