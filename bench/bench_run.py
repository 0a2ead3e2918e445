"""Runs one Case: validate every implementation, then time the ones that passed.

An implementation whose outputs do not match the float64 reference is reported FAIL and never
timed; a fastvision op that is not built yet makes the case "n/a (op not built)" while the
NumPy and PyTorch baselines are still validated and timed. The result is one plain dict (one
JSON line): see record().
"""

import numpy as np

from bench_case import to_numpy

NA = "n/a (op not built)"
# Seconds to wait after an implementation before the next one runs. OpenBLAS's worker threads
# busy-wait ~2^28 cycles (~0.1 s) after each call; on 2 cores they would steal time from
# whatever is timed next. The fastvision pool's worker polls 2 ms before it sleeps
# (csrc/core/parallel.cpp); libgomp (torch) goes to sleep within ~1 ms.
SETTLE_S = {"numpy": 0.15, "fastvision": 0.005}


def implementations(case, fv_ops, torch):
    """[(name, build)] where build() returns the timed zero-argument callable."""
    impls = [("fastvision", lambda d: case.fastvision(fv_ops, d))]
    if case.numpy is not None:
        impls.append(("numpy", case.numpy))
    if case.torch is not None and torch is not None:
        for lay in case.layouts:
            impls.append((f"torch_{lay}", lambda d, lay=lay: case.torch(torch, d, lay)))
    return impls


def validate(case, build, inputs, reference):
    """(fn or None, status, message): build the callable, run it once, check its outputs."""
    try:
        fn = build(inputs)
        ok, msg = case.check(inputs, reference, to_numpy(fn()))
    except Exception as e:  # a broken op must not stop the whole benchmark
        return None, "FAIL", f"{type(e).__name__}: {e}"
    return (fn, "ok", "") if ok else (None, "FAIL", msg)


def run_case(case, fv_ops, torch, timer, peak_flops, *, validate_only=False, seed=0, log=print,
             settle_s=SETTLE_S):
    missing = [op for op in case.fv_ops if not hasattr(fv_ops, op)]
    rng = np.random.default_rng(seed)
    inputs = case.make(rng)
    reference = case.reference(inputs)
    impls, fns = {}, {}
    for name, build in implementations(case, fv_ops, torch):
        if name == "fastvision" and missing:
            impls[name] = {"status": NA, "message": "missing fastvision.ops." + ", ".join(missing)}
            continue
        fn, status, msg = validate(case, build, inputs, reference)
        impls[name] = {"status": status, "message": msg}
        if status == "FAIL":
            log(f"  FAIL {case.name} [{name}]: {msg}")
        if fn is not None:
            fns[name] = fn
    if fns and not validate_only:
        # Every contender that passed, timed in interleaved turns (see Timer.measure_interleaved).
        for name, t in timer.measure_interleaved(fns, settle_s=settle_s).items():
            entry = impls[name]
            entry.update(t)
            rate = case.work / t["median_s"]
            entry["rate"] = rate / 1e9
            if case.metric == "GFLOP/s" and peak_flops:
                entry["pct_peak"] = 100.0 * rate / peak_flops
    del fns
    del inputs, reference  # large inputs (4096^2) go before the next case allocates
    return record(case, impls)


def record(case, impls):
    fv = impls["fastvision"]
    rec = {"case": case.name, "group": case.group, "layer": case.layer, "shape": case.shape,
           "metric": case.metric, "work": case.work, "status": fv["status"],
           "message": fv.get("message", ""), "impls": impls}
    torch_t = {k: v["median_s"] for k, v in impls.items() if k.startswith("torch_") and "median_s" in v}
    if torch_t:
        best = min(torch_t, key=torch_t.get)
        rec["torch_best"], rec["torch_best_s"] = best, torch_t[best]
    fv_s = fv.get("median_s")
    if fv_s and torch_t:
        rec["speed_vs_torch"] = rec["torch_best_s"] / fv_s
    if fv_s and "median_s" in impls.get("numpy", {}):
        rec["speed_vs_numpy"] = impls["numpy"]["median_s"] / fv_s
    return rec
