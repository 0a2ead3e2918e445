"""ISA selection, thread-pool control, and their environment variables."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastvision as fv


def run_python(code, **env_vars):
    env = dict(os.environ, SKBUILD_EDITABLE_SKIP="1")
    env.pop("FASTVISION_ISA", None)
    env.pop("FASTVISION_NUM_THREADS", None)
    env.update(env_vars)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("level", fv.available_isas())
def test_env_forces_isa(level):
    r = run_python("import fastvision as fv; print(fv.isa())", FASTVISION_ISA=level)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == level


def test_env_bad_isa_raises_at_import():
    r = run_python("import fastvision", FASTVISION_ISA="sse9")
    assert r.returncode != 0
    assert "ValueError: FASTVISION_ISA: must be one of scalar, avx2, avx512, got 'sse9'" in r.stderr


def test_env_sets_threads_and_rejects_bad_values():
    r = run_python("import fastvision as fv; print(fv.get_num_threads())", FASTVISION_NUM_THREADS="1")
    assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
    r = run_python("import fastvision", FASTVISION_NUM_THREADS="zero")
    assert "ValueError: FASTVISION_NUM_THREADS: must be an integer in [1, 1024], got 'zero'" in r.stderr


def test_default_isa_is_the_detected_one():
    r = run_python("import fastvision as fv; print(fv.isa(), fv.detected_isa())")
    active, detected = r.stdout.split()
    assert active == detected


def test_set_isa_validates():
    with pytest.raises(ValueError, match="set_isa: isa must be one of scalar, avx2, avx512, got 'avx9'"):
        fv.set_isa("avx9")
    with pytest.raises(TypeError, match="set_isa: level must be a str, got int"):
        fv.set_isa(2)
    if fv.detected_isa() != "avx512":
        with pytest.raises(ValueError, match="is not supported by this CPU"):
            fv.set_isa("avx512")


def test_set_num_threads_validates(threads):
    with pytest.raises(ValueError, match="set_num_threads: n must be >= 1, got 0"):
        fv.set_num_threads(0)
    with pytest.raises(TypeError, match="set_num_threads: n must be an int, got float"):
        fv.set_num_threads(1.5)
    threads(3)
    assert fv.get_num_threads() == 3


def test_concurrent_callers_get_correct_results(threads):
    """Kernels release the GIL; calls from several Python threads must not interfere."""
    threads(2)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(200_000).astype(np.float32) for _ in range(4)]
    results = [None] * 4

    def work(i):
        for _ in range(20):
            results[i] = fv.ops.relu(xs[i])

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for x, y in zip(xs, results):
        np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_fma_probe_counts_flops(isa):
    lanes = {"scalar": 1, "avx2": 8, "avx512": 16}[isa]
    assert fv._C.fma_probe(1000) == 12 * lanes * 2 * 1000 * fv.get_num_threads()
    with pytest.raises(ValueError, match="fma_probe: iterations must be >= 1, got 0"):
        fv._C.fma_probe(0)


def test_kernels_work_in_a_forked_child(threads):
    """A forked child has none of the pool's worker threads: it must get its own pool (and
    buffer cache) instead of waiting forever for workers that are not there."""
    import multiprocessing as mp
    threads(2)
    x = np.random.default_rng(3).standard_normal(300_000).astype(np.float32)
    fv.ops.relu(x)  # the pool and cache exist (and are warm) before the fork

    def child(q):
        y = fv.ops.relu(x)  # large enough to use both threads and the cache
        q.put(bool(np.array_equal(y, np.maximum(x, 0))) and fv.get_num_threads() == 2)

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q,))
    p.start()
    p.join(timeout=60)
    if p.is_alive():
        p.kill()
        pytest.fail("kernel call in a forked child hung")
    assert p.exitcode == 0 and q.get(timeout=5) is True
