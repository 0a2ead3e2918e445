"""Locating the object files of the fastvision._C build that this test run imports."""

import glob
import os

import fastvision

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ISA_SUFFIXES = ("_avx2.cpp.o", "_avx512.cpp.o")


def object_dir():
    """The newest CMakeFiles/_C.dir under build/ (editable or in-place build), or None."""
    dirs = glob.glob(os.path.join(REPO, "build", "*", "CMakeFiles", "_C.dir"))
    if not dirs:
        return None
    return max(dirs, key=lambda d: max((os.path.getmtime(p) for p in glob.glob(
        os.path.join(d, "**", "*.o"), recursive=True)), default=0.0))


def objects():
    """(isa_objects, baseline_objects) of the newest build, as lists of paths."""
    d = object_dir()
    if d is None:
        return [], []
    objs = sorted(glob.glob(os.path.join(d, "**", "*.o"), recursive=True))
    isa = [o for o in objs if o.endswith(ISA_SUFFIXES)]
    return isa, [o for o in objs if not o.endswith(ISA_SUFFIXES)]


def module_path():
    return fastvision._C.__file__
