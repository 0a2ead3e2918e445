"""Reports: the reference-CNN sum, the goals check, and cpu.md / cpu.jsonl / cpu.png.

Speed ratios are baseline time / fastvision time (> 1: fastvision is faster), against the
better PyTorch layout per case (per layer for the CNN sum) and against NumPy.
"""

import json
import os

DISTURBED = 0.2  # cores of background load above which a case's timings are flagged

# (column, implementations shown in it): 2-D operands have one layout, shown as NCHW
TORCH_COLS = (("torch NCHW ms", ("torch_nchw", "torch_contiguous")),
              ("torch CL ms", ("torch_channels_last",)))


def cnn_sum(records, layers):
    """Sum of forward+backward medians over the reference CNN's layers (one JSON-able dict).

    PyTorch takes, per layer, the layout with the lower fwd+bwd total (a model would keep one
    layout for a layer's forward and backward)."""
    out = {"case": "CNN fwd+bwd sum", "group": "cnn_sum", "layers": list(layers), "missing": []}
    fv_total, torch_total, choice = 0.0, 0.0, {}
    for layer in layers:
        recs = [r for r in records if r.get("layer") == layer]
        if not recs:
            out["missing"].append(f"{layer} (not run)")
            continue
        for r in recs:
            t = r["impls"]["fastvision"].get("median_s")
            if t is None:
                out["missing"].append(r["case"])
            else:
                fv_total += t
        per_layout = {}
        for name in recs[0]["impls"]:
            if name.startswith("torch_"):
                ts = [r["impls"].get(name, {}).get("median_s") for r in recs]
                if all(t is not None for t in ts):
                    per_layout[name] = sum(ts)
        if per_layout:
            choice[layer] = min(per_layout, key=per_layout.get)
            torch_total += per_layout[choice[layer]]
    out["torch_layout"] = choice
    if not out["missing"]:
        out["fastvision_s"] = fv_total
    if len(choice) == len(layers):  # every layer has a torch timing
        out["torch_s"] = torch_total
    if "fastvision_s" in out and "torch_s" in out:
        out["speed_vs_torch"] = out["torch_s"] / out["fastvision_s"]
        out["time_vs_torch"] = out["fastvision_s"] / out["torch_s"]
    return out


def check_goals(records, total, goals):
    """[(description, verdict string, met: True/False/None)] from the measured ratios."""
    by_name = {r["case"]: r for r in records}
    by_name[total["case"]] = total
    res = []
    for desc, case, base, need in goals:
        r = by_name.get(case)
        key = "speed_vs_" + base
        if r is None:
            res.append((desc, "n/a (not run)", None))
        elif key in r:
            v = r[key]
            shown = (f"time ratio {1 / v:.2f}x" if r is total else f"{v:.2f}x")
            res.append((desc, ("met" if v >= need else "NOT met") + f" ({shown})", v >= need))
        elif r.get("status", "ok") != "ok":
            st = r["status"]
            res.append((desc, st, None) if st.startswith("n/a") else
                       (desc, f"NOT met (fastvision {st} validation)", False))
        elif r.get("missing"):
            res.append((desc, "n/a (incomplete)", None))
        else:
            res.append((desc, f"n/a (no {base} timing)", None))
    return res


def _first(impls, names):
    return next((impls[n] for n in names if n in impls), None)


def _ms(entry):
    """A time cell: the median in ms, FAIL, or a dash (not built, not run, validate-only)."""
    if not entry:
        return "—"
    if "median_s" in entry:
        return f"{entry['median_s'] * 1e3:.4g}"
    return "FAIL" if entry.get("status") == "FAIL" else "—"


def _ratio(rec, key):
    return f"{rec[key]:.2f}x" if key in rec else "—"


def markdown(header, records, total, goals):
    lines = ["# fastvision kernel benchmark (CPU)", ""]
    lines += [f"- {k}: {v}" for k, v in header.items()]
    cols = [c for c in TORCH_COLS if any(n in r["impls"] for r in records for n in c[1])]
    head = (["case", "shape", "check", "fastvision ms", "fastvision rate", "% peak", "NumPy ms"]
            + [c[0] for c in cols] + ["vs torch (best layout)", "vs NumPy"])
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        fv = r["impls"]["fastvision"]
        rate = f"{fv['rate']:.3g} {r['metric']}" if "rate" in fv else "—"
        pct = f"{fv['pct_peak']:.1f}" if "pct_peak" in fv else "—"
        best = r.get("torch_best", "").replace("torch_", "").replace("channels_last", "CL")
        vs_t = _ratio(r, "speed_vs_torch") + (f" ({best})" if "speed_vs_torch" in r else "")
        busy = r.get("background_cores", 0) > DISTURBED
        row = ([r["case"] + (" (*)" if busy else ""), r["shape"], r["status"], _ms(fv), rate, pct, _ms(r["impls"].get("numpy"))]
               + [_ms(_first(r["impls"], c[1])) for c in cols]
               + [vs_t, _ratio(r, "speed_vs_numpy")])
        lines.append("| " + " | ".join(row) + " |")
    if any(r.get("background_cores", 0) > DISTURBED for r in records):
        lines += ["", f"(*) other processes kept more than {DISTURBED} cores busy on average while "
                  "this case ran: its times are disturbed (background_cores in cpu.jsonl)."]
    fails = [(r["case"], k, e["message"]) for r in records for k, e in r["impls"].items()
             if e.get("status") == "FAIL"]
    if fails:
        lines += ["", "Validation failures (not timed):", ""]
        lines += [f"- {c} [{k}]: {m}" for c, k, m in fails]
    lines += ["", f"## Reference CNN, forward+backward sum ({', '.join(total['layers'])})", ""]
    if "fastvision_s" in total:
        lines.append(f"- fastvision: {total['fastvision_s'] * 1e3:.4g} ms")
    else:
        lines.append("- fastvision: n/a (no timing for " + ", ".join(total["missing"]) + ")")
    if "torch_s" in total:
        lay = ", ".join(f"{k}: {v.replace('torch_', '')}" for k, v in total["torch_layout"].items())
        lines.append(f"- PyTorch (better layout per layer: {lay}): {total['torch_s'] * 1e3:.4g} ms")
    if "speed_vs_torch" in total:
        lines.append(f"- fastvision time / PyTorch time: {total['time_vs_torch']:.2f} "
                     f"(speed ratio {total['speed_vs_torch']:.2f}x)")
    lines += ["", "## Goals", "", "| goal | result |", "|---|---|"]
    lines += [f"| {d} | {v} |" for d, v, _ in goals]
    return "\n".join(lines) + "\n"


def write_jsonl(path, header, records, total):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps({"header": header}) + "\n")
        for r in records + [total]:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, path)


def plot(path, records, peak_flops):
    """Grouped bars of speed ratios per case, and sgemm GFLOP/s. False if matplotlib is absent."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6), gridspec_kw={"width_ratios": [3, 1]})
    names = [r["case"] for r in records]
    y = list(range(len(names)))
    for off, key, label in ((-0.2, "speed_vs_torch", "vs PyTorch (better layout)"),
                            (0.2, "speed_vs_numpy", "vs NumPy")):
        vals = [r.get(key, float("nan")) for r in records]
        ax1.barh([i + off for i in y], vals, height=0.4, label=label)
        for i, v in enumerate(vals):
            if v == v:
                ax1.text(v, i + off, f" {v:.2f}", va="center", fontsize=7)
    for i, r in enumerate(records):
        if r["status"] != "ok":
            ax1.text(0.01, i, r["status"], va="center", fontsize=7, transform=ax1.get_yaxis_transform())
    ax1.set_xscale("log")  # ratios: 0.5x and 2x sit at the same distance from 1
    ax1.margins(x=0.12)  # room for the value labels
    ax1.axvline(1.0, color="k", lw=0.8)
    ax1.set_yticks(y, names)
    ax1.invert_yaxis()
    ax1.set_xlabel("speed ratio, log scale (baseline time / fastvision time; > 1 = fastvision faster)")
    ax1.legend(loc="best", fontsize=8)
    sg = [r for r in records if r["group"] == "sgemm"]
    impls = ("fastvision", "numpy", "torch_contiguous")
    for j, name in enumerate(impls):
        ax2.bar([i + (j - 1) * 0.27 for i in range(len(sg))],
                [r["impls"].get(name, {}).get("rate", 0) for r in sg], width=0.27,
                label=name.replace("_contiguous", ""))
    if peak_flops:
        ax2.axhline(peak_flops / 1e9, color="k", ls="--", lw=0.8, label="fp32 peak")
    ax2.set_xticks(range(len(sg)), [r["shape"].split("x")[0] + "^3" for r in sg])
    ax2.set_ylabel("sgemm GFLOP/s")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
