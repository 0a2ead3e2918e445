"""Build hygiene: no AVX outside ISA files, internal linkage in ISA files, and the module
running on CPUs without AVX-512 or AVX (under qemu-user)."""

import os
import platform
import re
import shutil
import subprocess
import sys

import pytest

import _build_tree

IS_X86 = platform.machine().lower() in ("x86_64", "amd64")
needs_objects = pytest.mark.skipif(
    _build_tree.object_dir() is None,
    reason="no build tree under build/ (module installed from a wheel): nothing to disassemble")

# AT&T syntax: a VEX/EVEX-encoded instruction's mnemonic starts with 'v' (vmovups, vfmadd...,
# vzeroupper), wide registers are %ymm/%zmm, AVX-512 mask registers %k0-%k7.
AVX_INSN = re.compile(r"^\s*[0-9a-f]+:\s+(v[a-z0-9]+)\b|%[yz]mm\d|%k[0-7]\b")


@pytest.mark.skipif(not IS_X86, reason="x86-64 only")
@needs_objects
def test_baseline_objects_have_no_avx_instructions():
    if shutil.which("objdump") is None:
        pytest.skip("objdump (binutils) not installed")
    isa_objs, base_objs = _build_tree.objects()
    assert base_objs and isa_objs
    offenders = []
    for obj in base_objs:
        asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj], check=True,
                             capture_output=True, text=True).stdout
        fn = "?"
        for line in asm.splitlines():
            if line.endswith(">:"):
                fn = line
            elif AVX_INSN.search(line):
                offenders.append(f"{os.path.basename(obj)} {fn} {line.strip()}")
                break
    assert not offenders, "AVX instructions outside ISA files:\n" + "\n".join(offenders[:20])


@pytest.mark.skipif(not IS_X86, reason="x86-64 only")
@needs_objects
def test_isa_objects_export_only_their_kernel_tables():
    """Everything in an ISA file has internal linkage except its one constant table, so no
    inline function compiled with AVX can be merged into the baseline path by the linker."""
    if shutil.which("nm") is None:
        pytest.skip("nm (binutils) not installed")
    isa_objs, _ = _build_tree.objects()
    table = re.compile(r"^fv::\w+_kernels_(avx2|avx512)$")
    bad = []
    for obj in isa_objs:
        out = subprocess.run(["nm", "-C", "--extern-only", "--defined-only", obj], check=True,
                             capture_output=True, text=True).stdout
        syms = [line.split(" ", 2)[2] for line in out.splitlines() if line.strip()]
        bad += [f"{os.path.basename(obj)}: {s}" for s in syms if not table.match(s)]
        assert syms, f"{obj} exports no kernel table"
    assert not bad, "ISA objects export symbols besides their tables:\n" + "\n".join(bad)


SMALL_CONV = """
import numpy as np, fastvision as fv
x = np.arange(2 * 3 * 6 * 7, dtype=np.float32).reshape(2, 3, 6, 7) % 5 - 2
w = np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3) % 3 - 1
b = np.array([1, -1, 0.5, 0], dtype=np.float32)
y = fv.ops.conv2d(x, w, b, padding=1)
ref = np.zeros((2, 4, 6, 7))
xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
for i in range(3):
    for j in range(3):
        ref += np.einsum('nchw,oc->nohw', xp[:, :, i:i + 6, j:j + 7], w[:, :, i, j])
ref += b[None, :, None, None]
assert np.array_equal(y, ref), 'conv2d result differs from the reference'
print(fv.isa())
"""


@pytest.mark.skipif(not IS_X86, reason="x86-64 only")
@pytest.mark.parametrize("cpu,expected_isa", [("Nehalem", "scalar"), ("Haswell", "avx2")])
def test_import_and_conv_under_older_cpus(cpu, expected_isa):
    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        pytest.skip("qemu-x86_64 not installed (Debian: apt-get install qemu-user)")
    env = dict(os.environ, SKBUILD_EDITABLE_SKIP="1")  # no rebuild check under emulation
    env.pop("FASTVISION_ISA", None)
    r = subprocess.run([qemu, "-cpu", cpu, sys.executable, "-c", SMALL_CONV], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"under -cpu {cpu}: rc={r.returncode}\n{r.stderr[-3000:]}"
    assert r.stdout.strip().splitlines()[-1] == expected_isa
