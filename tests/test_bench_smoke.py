"""Smoke tests of bench/bench_kernels.py: a broken benchmark must fail the test suite.

Runs the benchmark's validation on tiny shapes — with fastvision.ops as built, with a
NumPy-backed stand-in for the final fastvision API (so every case's call signature and check
are exercised even before the ops land), and with deliberately wrong kernels (which must be
reported FAIL) — then the timing/report path with a minimal timer, and the command line in
--quick --validate-only mode. Timings are never asserted.
"""

import json
import os
import subprocess
import sys
import types

import numpy as np

import fastvision as fv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import bench_ref as ref  # noqa: E402
import bench_report  # noqa: E402
from bench_cases import build_cases  # noqa: E402
from bench_run import NA, run_case  # noqa: E402
from bench_timing import Timer, peak  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

TINY = {
    "batch": 2,
    "conv": [("conv1", 1, 4, 8, 9, 3, 1, 0), ("conv2", 3, 5, 7, 7, 3, 2, 1)],
    "pool": [("pool1", 3, 7, 6, 2, 2), ("overlap", 2, 7, 8, 3, 2)],  # overlap: not in the CNN
    "linear": [("fc1", 17, 9, True), ("fc2", 9, 3, False)],
    "loss": [("loss", 10)],
    "relu": [("relu", 3, 5, 5)],
    "sgemm": [33, 65],
    "sgemm_quick": [33],
    "cnn_order": ["conv1", "pool1", "conv2", "fc1", "fc2", "loss"],
}
GOALS = [("sgemm 33 >= 1x torch", "sgemm 33^3", "torch", 1.0),
         ("CNN <= 0.5x torch", "CNN fwd+bwd sum", "torch", 2.0)]
F32 = np.float32


def _stand_in(broken=False):
    """The final fastvision.ops API, computed with the float64 references (cast to float32)."""
    off = 1.001 if broken else 1.0

    def matmul(a, b, *, trans_a=False, trans_b=False):
        return (ref.matmul(a.T if trans_a else a, b.T if trans_b else b) * off).astype(F32)

    def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                   return_indices=False):
        y, idx = ref.max_pool2d(x, kernel_size, stride or kernel_size)
        idx = idx + 1 if broken else idx
        return (y.astype(F32), idx) if return_indices else y.astype(F32)

    def conv_bwd(gy, x, w, stride=1, padding=0, dilation=1, groups=1, **_):
        return tuple((g * off).astype(F32) for g in ref.conv2d_backward(gy, x, w, stride, padding, dilation))

    def sce(logits, labels, reduction="mean"):
        loss, grad, _, _ = ref.softmax_cross_entropy(logits, labels)
        return loss, (grad * off).astype(F32)

    return types.SimpleNamespace(
        matmul=matmul,
        linear=lambda x, w, b=None: (ref.linear(x, w, b) * off).astype(F32),
        linear_relu=lambda x, w, b=None: ref.relu(ref.linear(x, w, b) * off).astype(F32),
        linear_backward=lambda gy, x, w, *, need_input_grad=True: tuple(
            (g * off).astype(F32) for g in ref.linear_backward(gy, x, w)),
        conv2d_relu=lambda x, w, bias=None, stride=1, padding=0, dilation=1, groups=1: ref.relu(
            ref.conv2d(x, w, bias, stride, padding, dilation) * off).astype(F32),
        conv2d_backward=conv_bwd,
        max_pool2d=max_pool2d,
        max_pool2d_backward=lambda gy, idx, shape: (ref.max_pool2d_backward(gy, idx, shape) * off).astype(F32),
        relu=lambda x: (ref.relu(x) * off + (1e-3 if broken else 0)).astype(F32),
        relu_backward=lambda gy, y: ref.relu_backward(gy * off, y).astype(F32),
        softmax_cross_entropy=sce)


def _validate(ops):
    return [run_case(c, ops, torch, None, None, validate_only=True, log=lambda *_: None)
            for c in build_cases(TINY)]


def test_validation_with_built_ops():
    """The baselines and whatever fastvision ops are built pass; missing ones say n/a."""
    for rec in _validate(fv.ops):
        for name, e in rec["impls"].items():
            assert e["status"] in ("ok", NA), (rec["case"], name, e["message"])
            assert e["status"] == "ok" or name == "fastvision"


def test_validation_with_final_api_stand_in():
    """Every case calls the final API correctly and accepts correct results."""
    recs = _validate(_stand_in())
    assert len(recs) == 2 + 2 * 2 + 2 * 2 + 2 * 2 + 1 + 2  # sgemm, conv, pool, linear, loss, relu
    for rec in recs:
        assert rec["status"] == "ok", (rec["case"], rec["message"])


def test_validation_rejects_wrong_results():
    for rec in _validate(_stand_in(broken=True)):
        assert rec["status"] == "FAIL", rec["case"]
        assert rec["message"], rec["case"]


def test_check_close_bound():
    want = np.array([1.0, 2.0])
    assert ref.check_close("x", want * (1 + 1e-7), want, np.abs(want), k=1)[0]
    ok, msg = ref.check_close("x", want * (1 + 1e-4), want, np.abs(want), k=1)
    assert not ok and "2 of 2 elements out of bound" in msg
    assert not ref.check_close("x", want[:1], want, want, k=1)[0]
    assert not ref.check_close("x", [np.nan, 2.0], want, want, k=1)[0]


def test_timing_and_reports(tmp_path):
    timer = Timer(target_s=1e-3, min_reps=1, max_reps=3, warmup_s=0.0, min_sample_s=0.0)
    peak_flops, desc = peak(fv.isa(), 1)
    assert "FLOP/cycle" in desc or "unknown" in desc
    recs = [run_case(c, _stand_in(), torch, timer, peak_flops, settle_s={})
            for c in build_cases(TINY, quick=True)]
    for r in recs:
        assert r["impls"]["fastvision"]["median_s"] > 0
        if torch is not None:
            assert r["speed_vs_torch"] > 0
    total = bench_report.cnn_sum(recs, TINY["cnn_order"])
    assert not total["missing"] and total["fastvision_s"] > 0
    goals = bench_report.check_goals(recs, total, GOALS)
    assert len(goals) == 2 and all(v.startswith(("met", "NOT met", "n/a (no torch")) for _, v, _ in goals)
    md = bench_report.markdown({"threads": 1}, recs, total, goals)
    assert "| sgemm 33^3 |" in md and "## Goals" in md
    path = str(tmp_path / "cpu.jsonl")
    bench_report.write_jsonl(path, {"threads": 1}, recs, total)
    lines = [json.loads(l) for l in open(path)]
    assert len(lines) == len(recs) + 2 and lines[-1]["group"] == "cnn_sum"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert bench_report.plot(str(tmp_path / "cpu.png"), recs, peak_flops)
    assert (tmp_path / "cpu.png").stat().st_size > 0


def test_missing_ops_reported_na():
    recs = _validate(types.SimpleNamespace())
    assert all(r["status"] == NA for r in recs)
    total = bench_report.cnn_sum(recs, TINY["cnn_order"])
    assert "fastvision_s" not in total and total["missing"]
    (desc, verdict, met), = bench_report.check_goals(recs, total, GOALS[1:])
    assert verdict == "n/a (incomplete)" and met is None


def test_command_line_quick_validate_only():
    """The real script, real shapes, no timing; the BLAS variables force the re-exec path."""
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench_kernels.py"),
                          "--quick", "--validate-only", "--threads", "1"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "re-executing without OPENBLAS_CORETYPE" in out.stdout
    assert "environment: re-executed without OPENBLAS_CORETYPE=Haswell" in out.stdout
    assert "validate-only: 19 cases, 0 failure(s)" in out.stdout
    assert "FAIL" not in out.stdout
