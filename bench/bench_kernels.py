#!/usr/bin/env python3
"""fastvision kernel benchmark: validate, then time, side by side with NumPy and PyTorch.

    PYTHONPATH=. python bench/bench_kernels.py [--quick] [--threads 2] [--out bench/results]
        [--validate-only] [--only SUBSTRING] [--isa scalar|avx2|avx512]

Every implementation is first checked against a float64 NumPy reference (bench_ref.py) and
reported FAIL, untimed, if it is off; then warm-up and the median of adaptive repeats. Cases
whose fastvision op is not built yet report "n/a (op not built)". Writes cpu.md, cpu.jsonl and
cpu.png into --out; exits 1 if any implementation failed validation. --quick: a smoke run
(short timings, no 4096^3) that still validates everything.
Timings are never asserted by tests (tests/test_bench_smoke.py checks the validation only).
"""

import os
import sys

# ---- shapes (data) ------------------------------------------------------------------------
# The reference CNN (MNIST, batch 64): conv 3x3 -> relu -> maxpool 2x2, twice, then
# conv 3x3 -> relu, flatten (64*3*3 = 576), linear 576->64 -> relu, linear 64->10, softmax-CE.
SHAPES = {
    "batch": 64,
    # (layer, C_in, C_out, H, W, kernel, stride, padding); with bias; forward fused with relu
    "conv": [("conv1", 1, 32, 28, 28, 3, 1, 0),
             ("conv2", 32, 64, 13, 13, 3, 1, 0),
             ("conv3", 64, 64, 5, 5, 3, 1, 0)],
    # (layer, C, H, W, kernel, stride): max-pool with indices, as a training model needs them
    "pool": [("pool1", 32, 26, 26, 2, 2),
             ("pool2", 64, 11, 11, 2, 2)],
    # (layer, in, out, relu fused)
    "linear": [("fc1", 576, 64, True),
               ("fc2", 64, 10, False)],
    # (layer, classes): softmax cross-entropy, mean reduction, loss and gradient together
    "loss": [("loss", 10)],
    # (name, C, H, W): standalone relu at the first conv's output (not part of the CNN sum:
    # the model fuses relu into conv/linear)
    "relu": [("relu", 32, 26, 26)],
    "sgemm": [256, 1024, 4096],
    "sgemm_quick": [256, 1024],
    # the layers summed in the last section, in model order
    "cnn_order": ["conv1", "pool1", "conv2", "pool2", "conv3", "fc1", "fc2", "loss"],
}

# The acceptance goals: (description, case, baseline, minimum speed ratio).
GOALS = [
    ("sgemm 1024^3 >= 0.9x NumPy", "sgemm 1024^3", "numpy", 0.9),
    ("sgemm 1024^3 >= 2x PyTorch", "sgemm 1024^3", "torch", 2.0),
    ("sgemm 4096^3 >= 0.9x NumPy", "sgemm 4096^3", "numpy", 0.9),
    ("sgemm 4096^3 >= 2x PyTorch", "sgemm 4096^3", "torch", 2.0),
    ("conv 32->64 forward >= 1.1x PyTorch", "conv2 fwd", "torch", 1.1),
    ("conv 32->64 backward >= 1.1x PyTorch", "conv2 bwd", "torch", 1.1),
    ("conv 1->32 forward >= 1x PyTorch", "conv1 fwd", "torch", 1.0),
    ("maxpool (64,32,26,26) forward >= 1x PyTorch", "pool1 fwd", "torch", 1.0),
    ("maxpool (64,32,26,26) backward >= 1x PyTorch", "pool1 bwd", "torch", 1.0),
    ("maxpool (64,64,11,11) forward >= 1x PyTorch", "pool2 fwd", "torch", 1.0),
    ("maxpool (64,64,11,11) backward >= 1x PyTorch", "pool2 bwd", "torch", 1.0),
    ("softmax-CE 64x10 fwd+bwd >= 1x PyTorch", "loss fwd+bwd", "torch", 1.0),
    ("CNN fwd+bwd time <= 0.5x PyTorch", "CNN fwd+bwd sum", "torch", 2.0),
]

# OpenBLAS reads these at load time; this environment sets them and they slow NumPy down.
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REEXEC_MARK = "FV_BENCH_REEXECED"


def reexec_without_blas_env():
    """Re-run this script with BLAS_ENV removed (before numpy is imported) unless already absent."""
    found = [v for v in BLAS_ENV if v in os.environ]
    if not found:
        return
    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV}
    env[REEXEC_MARK] = ", ".join(f"{v}={os.environ[v]}" for v in found)
    print(f"bench_kernels: re-executing without {', '.join(found)} (they slow NumPy's OpenBLAS)",
          flush=True)
    os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)


if __name__ == "__main__":
    reexec_without_blas_env()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
try:
    import fastvision  # noqa: E402
except ImportError:  # an in-place build run without PYTHONPATH=.
    sys.path.insert(0, ROOT)
    import fastvision  # noqa: E402
import numpy as np  # noqa: E402

import bench_report  # noqa: E402
from bench_cases import build_cases  # noqa: E402
from bench_run import run_case  # noqa: E402
from bench_timing import LoadMeter, Timer, blas_info, cpu_model, git_rev, limit_numpy_threads, peak  # noqa: E402

TORCH_NOTE = ("PyTorch: forward via torch.nn.functional (conv + in-place relu); backward via the "
              "aten kernels autograd dispatches to (convolution_backward, "
              "max_pool2d_with_indices_backward, threshold_backward, mm + sum for linear, "
              "_log_softmax + nll_loss_forward/backward + _log_softmax_backward_data), under "
              "torch.no_grad(); NCHW and channels_last (inputs and weights converted before timing)")


def import_torch(threads):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def make_header(args, torch, peak_desc, timer, numpy_limited):
    fv_rev = git_rev(ROOT)
    torch_v = "not installed"
    if torch is not None:
        torch_v = (f"{torch.__version__} (threads {torch.get_num_threads()}, oneDNN "
                   f"{'on' if torch.backends.mkldnn.is_available() else 'off'})")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick (smoke run)" if args.quick else "full",
        "CPU": f"{cpu_model()} ({os.cpu_count()} logical CPUs)",
        "ISA": f"{fastvision.isa()} (detected {fastvision.detected_isa()})",
        "conv algorithm": (f"{fastvision.get_conv_algorithm()} (fastvision.set_conv_algorithm; "
                           "'auto' runs conv2's three passes and conv3's forward and data gradient "
                           "as Winograd F(4x4,3x3)). Conv GFLOP/s and % peak count the direct-convolution "
                           "FLOPs, so a Winograd layer's effective rate can pass 100%"),
        "threads": f"{args.threads} (fastvision, torch, " + (
            "numpy BLAS via threadpoolctl)" if numpy_limited else
            "numpy BLAS NOT limited: threadpoolctl is not installed)"),
        "peak fp32": peak_desc,
        "fastvision": fastvision.__version__ + (f" (git {fv_rev})" if fv_rev else ""),
        "numpy": np.__version__,
        "numpy BLAS": blas_info(),
        "torch": torch_v,
        "python": platform.python_version(),
        "environment": (f"re-executed without {os.environ[REEXEC_MARK]}"
                        if REEXEC_MARK in os.environ else
                        "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE not set"),
        "timing": (f"validate first; warm-up, then median of adaptive repeats (~{timer.target_s:g} s "
                   f"per implementation, at least {timer.min_reps}), taken in 5 interleaved "
                   f"turns per implementation so load drifts on this shared machine hit all "
                   f"alike; ms per call"),
        "ratios": "baseline time / fastvision time (> 1: fastvision faster); GB/s = bytes read + written",
        "torch calls": TORCH_NOTE,
    }


def case_line(r):
    fv = r["impls"]["fastvision"]
    parts = [f"{r['case']:<16}", f"{r['status']:<6}"]
    for name, e in r["impls"].items():
        t = f"{e['median_s'] * 1e3:.4g} ms" if "median_s" in e else e["status"]
        parts.append(f"{name.replace('torch_', 't:')} {t}")
    if "rate" in fv:
        parts.append(f"{fv['rate']:.3g} {r['metric']}")
    for key in ("speed_vs_torch", "speed_vs_numpy"):
        if key in r:
            parts.append(f"{key.replace('speed_', '')} {r[key]:.2f}x")
    return " | ".join(parts)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: short timings, no 4096^3")
    p.add_argument("--threads", type=int, default=None, help="threads for every library "
                   "(default: fastvision's current pool size)")
    p.add_argument("--out", default=os.path.join(HERE, "results"), help="output folder")
    p.add_argument("--validate-only", action="store_true", help="check results, time nothing")
    p.add_argument("--only", default=None, help="run only the cases whose name contains this")
    p.add_argument("--isa", default=None, help="lower fastvision's dispatch level first")
    args = p.parse_args(argv)
    if args.threads is None:
        args.threads = fastvision.get_num_threads()
    if args.threads < 1:
        p.error("--threads must be >= 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.isa:
        fastvision.set_isa(args.isa)
    fastvision.set_num_threads(args.threads)
    torch = import_torch(args.threads)
    limiter = limit_numpy_threads(args.threads)
    peak_flops, peak_desc = peak(fastvision.isa(), args.threads)
    timer = (Timer(target_s=0.03, min_reps=3, max_reps=200, warmup_s=0.0) if args.quick else
             Timer(target_s=0.25, min_reps=5, max_reps=2000, warmup_s=0.05))
    header = make_header(args, torch, peak_desc, timer, limiter is not None)
    for k, v in header.items():
        print(f"{k}: {v}")
    cases = [c for c in build_cases(SHAPES, quick=args.quick) if not args.only or args.only in c.name]
    records = []
    load = LoadMeter()
    with torch.no_grad() if torch is not None else contextlib.nullcontext():
        for case in cases:
            case_load = LoadMeter()
            rec = run_case(case, fastvision.ops, torch, timer, peak_flops,
                           validate_only=args.validate_only)
            print(case_line(rec), flush=True)
            other = case_load.other_cores()
            if other is not None and not args.validate_only:
                rec["background_cores"] = other
            records.append(rec)
    if limiter is not None:
        limiter.restore_original_limits()
    # Only the GEMMs count real FLOPs: conv rates count the direct convolution's FLOPs, which
    # a Winograd layer (fastvision's or a baseline's) legitimately beats.
    fastest = max((e.get("rate", 0) for r in records
                   if r["metric"] == "GFLOP/s" and r["group"] in ("sgemm", "linear")
                   for e in r["impls"].values()), default=0)
    if peak_flops and fastest * 1e9 > peak_flops:
        header["peak fp32"] += (f"; NOTE: {fastest:.0f} GFLOP/s was measured, above this peak: "
                                "the cores run faster than 'cpu MHz' says (boost clock)")
    other = load.other_cores()
    if other is not None:
        header["background load"] = (f"{other:.2f} cores busy with other processes on average "
                                     "during the run" + (" (figures disturbed: rerun on a quiet "
                                                         "machine)" if other > bench_report.DISTURBED
                                                        else ""))
        print("background load: " + header["background load"])
    failed = [r["case"] for r in records for e in r["impls"].values() if e["status"] == "FAIL"]
    if args.validate_only:
        print(f"validate-only: {len(records)} cases, {len(failed)} failure(s)")
        return 1 if failed else 0
    total = bench_report.cnn_sum(records, SHAPES["cnn_order"])
    goals = bench_report.check_goals(records, total, GOALS)
    os.makedirs(args.out, exist_ok=True)
    md = os.path.join(args.out, "cpu.md")
    with open(md, "w") as f:
        f.write(bench_report.markdown(header, records, total, goals))
    bench_report.write_jsonl(os.path.join(args.out, "cpu.jsonl"), header, records, total)
    png = os.path.join(args.out, "cpu.png")
    if not bench_report.plot(png, records, peak_flops):
        print("matplotlib is not installed: no plot")
        png = None
    if "speed_vs_torch" in total:
        print(f"CNN fwd+bwd: fastvision {total['fastvision_s'] * 1e3:.4g} ms, torch "
              f"{total['torch_s'] * 1e3:.4g} ms, time ratio {total['time_vs_torch']:.2f}")
    for desc, verdict, _ in goals:
        print(f"goal: {desc}: {verdict}")
    print("wrote " + ", ".join(p for p in (md, md[:-2] + "jsonl", png) if p))
    if failed:
        print("FAILED validation: " + ", ".join(sorted(set(failed))))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
