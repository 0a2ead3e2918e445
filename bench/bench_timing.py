"""Timing (warm-up, adaptive repeats, median) and the machine description (CPU, peak, versions).

Peak fp32 FLOP/s = cores used x FLOP/cycle/core x clock. FLOP/cycle comes from the active
fastvision ISA: avx512 and avx2 both 32 (Zen4 executes AVX-512 as 2 x 256-bit FMA pipes:
2 pipes x 8 lanes x 2 FLOP; an AVX2-only core with two 256-bit FMA pipes is the same), scalar 4
(2 scalar FMA pipes x 2 FLOP). The clock is the mean 'cpu MHz' in /proc/cpuinfo (the nominal
or current clock, not a measured boost clock). When fastvision's FMA probe (_C.fma_probe) is
built, the peak is measured instead: the boost clock is what kernels actually run at.
"""

import os
import platform
import statistics
import subprocess
import time

FLOP_PER_CYCLE = {"avx512": 32, "avx2": 32, "scalar": 4}


class Timer:
    """Median wall time of a zero-argument callable.

    target_s: the time one case/implementation should take in total (repeats adapt to it);
    calls shorter than min_sample_s are batched `inner` per sample so the clock's resolution
    and the loop's overhead stay small against what is measured.
    """

    def __init__(self, target_s=0.5, min_reps=5, max_reps=2000, warmup_s=0.05, min_sample_s=5e-5):
        self.target_s, self.min_reps, self.max_reps = target_s, min_reps, max_reps
        self.warmup_s, self.min_sample_s = warmup_s, min_sample_s

    def _warm_up(self, fn):
        """Warm fn up (caches, thread pools, lazily packed weights, allocator) and size its
        samples: (inner calls per sample, repeats)."""
        t_end = time.perf_counter() + self.warmup_s
        fn()
        while time.perf_counter() < t_end:
            fn()
        t0 = time.perf_counter()
        fn()
        first = max(time.perf_counter() - t0, 1e-9)
        inner = max(1, int(self.min_sample_s / first))
        reps = int(self.target_s / (first * inner))
        return inner, max(self.min_reps, min(self.max_reps, reps))

    @staticmethod
    def _sample(fn, inner, reps, out):
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            out.append((time.perf_counter() - t0) / inner)

    def measure(self, fn):
        inner, reps = self._warm_up(fn)
        samples = []
        self._sample(fn, inner, reps, samples)
        return {"median_s": statistics.median(samples), "min_s": min(samples),
                "repeats": reps, "inner": inner}

    def measure_interleaved(self, fns, rounds=5, settle_s=None):
        """{name: stats} for several callables timed in `rounds` turns each, taken in turn
        (A B C A B C ...), so that a change of machine load during the case (the machine is
        shared, and the load drifts over seconds) hits every contender alike instead of
        whichever happened to be timed then. Each turn is ~target_s / rounds long; after a
        turn of `name` the loop sleeps settle_s.get(name, 0) (spinning pool threads)."""
        settle_s = settle_s or {}
        plan = {}
        for name, fn in fns.items():
            inner, reps = self._warm_up(fn)
            plan[name] = (inner, max(1, -(-reps // rounds)))
            time.sleep(settle_s.get(name, 0))
        samples = {name: [] for name in fns}
        for _ in range(rounds):
            for name, fn in fns.items():
                self._sample(fn, *plan[name], samples[name])
                time.sleep(settle_s.get(name, 0))
        return {name: {"median_s": statistics.median(v), "min_s": min(v), "repeats": len(v),
                       "inner": plan[name][0], "rounds": rounds} for name, v in samples.items()}


class LoadMeter:
    """CPU time other processes used while the benchmark ran, in cores on average.

    The machine may be shared: /proc/stat's busy time minus this process's own CPU time says
    how much the figures were disturbed (0 = quiet machine)."""

    def __init__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), _busy_s(), _own_s()

    def other_cores(self):
        if self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        other = (_busy_s() - self.busy0) - (_own_s() - self.own0)
        return max(0.0, other / wall) if wall > 0 else None


def _busy_s():
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def _own_s():
    t = os.times()
    return t.user + t.system


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_mhz():
    """Mean 'cpu MHz' over the cores in /proc/cpuinfo; None when unavailable."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(l.split(":", 1)[1]) for l in f if l.startswith("cpu MHz")]
    except (OSError, ValueError):
        return None
    return sum(mhz) / len(mhz) if mhz else None


def measured_peak(threads):
    """Best FLOP/s of fastvision's FMA probe (12 independent FMA chains per thread at the
    active ISA, all pool threads) over a few 0.1 s runs; None when the probe is not built."""
    import fastvision
    probe = getattr(fastvision._C, "fma_probe", None)
    if probe is None:
        return None
    before = fastvision.get_num_threads()
    fastvision.set_num_threads(threads)
    try:
        iters, best = 100_000, 0.0
        for _ in range(7):
            t0 = time.perf_counter()
            flops = probe(iters)
            dt = time.perf_counter() - t0
            best = max(best, flops / dt)
            if dt < 0.05:
                iters *= 2
        return best
    finally:
        fastvision.set_num_threads(before)


def peak(isa, threads):
    """(peak FLOP/s or None, a sentence saying how it was derived).

    Measured with the FMA probe when available (the boost clock is well above the nominal
    'cpu MHz' here); otherwise cores x FLOP/cycle x nominal clock."""
    cores = max(1, min(threads, os.cpu_count() or 1))
    fpc = FLOP_PER_CYCLE.get(isa, 4)
    measured = measured_peak(threads)
    if measured:
        return measured, (f"{measured / 1e9:.1f} GFLOP/s measured: fastvision's FMA probe "
                          f"(12 independent {isa} FMA chains per thread, {threads} thread(s), "
                          f"best of 7), {measured / (cores * 1e9):.1f} per core: "
                          f"{measured / (cores * fpc * 1e6):.0f} MHz at {fpc} FLOP/cycle/core "
                          f"(one 512-bit FMA a cycle, as Zen 4), half that at two (Xeons)")
    mhz = cpu_mhz()
    if mhz is None:
        return None, "unknown (no 'cpu MHz' in /proc/cpuinfo)"
    p = cores * fpc * mhz * 1e6
    why = {"avx512": "Zen4: 2 x 256-bit FMA pipes x 8 lanes x 2 FLOP",
           "avx2": "2 x 256-bit FMA pipes x 8 lanes x 2 FLOP",
           "scalar": "2 scalar FMA pipes x 2 FLOP"}.get(isa, "assumed")
    return p, (f"{cores} core(s) x {fpc} FLOP/cycle ({isa}; {why}) x {mhz:.0f} MHz "
               f"(/proc/cpuinfo 'cpu MHz') = {p / 1e9:.1f} GFLOP/s")


def blas_info():
    """numpy's BLAS as threadpoolctl sees it (a string), or why it is unknown."""
    try:
        import threadpoolctl
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    libs = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"
            and "numpy" in i.get("filepath", "")] or \
           [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    if not libs:
        return "unknown (no BLAS found by threadpoolctl)"
    i = libs[0]
    return (f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')} kernels, "
            f"{i.get('threading_layer', '?')}, {i.get('num_threads')} threads; "
            f"{os.path.basename(i.get('filepath', ''))})")


def limit_numpy_threads(n):
    """A threadpoolctl context limiting numpy's BLAS to n threads (None if unavailable)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl.threadpool_limits(limits=n, user_api="blas")


def git_rev(path):
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
