"""Shared fixtures: hypothesis profiles, the ISA and thread-count fixtures.

Profiles: `ci` (default; quick) and `thorough` (HYPOTHESIS_PROFILE=thorough, on demand).
Every kernel test takes the `isa` fixture and so runs at every level this CPU supports.
"""

import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

import fastvision as fv  # noqa: E402

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                     HealthCheck.too_slow,
                                                     HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=25, derandomize=True, **_COMMON)
settings.register_profile("thorough", max_examples=400, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=fv.available_isas())
def isa(request):
    """Runs the test once per ISA level available here, restoring the level afterwards."""
    before = fv.isa()
    fv.set_isa(request.param)
    yield request.param
    fv.set_isa(before)


@pytest.fixture
def threads():
    """Lets a test change the thread count; restores it afterwards."""
    before = fv.get_num_threads()
    yield fv.set_num_threads
    fv.set_num_threads(before)


@pytest.fixture(autouse=True)
def _restore_conv_algorithm():
    """A test may switch the conv algorithm (fv.set_conv_algorithm); the next one starts from
    the setting the session began with."""
    before = fv.get_conv_algorithm()
    yield
    fv.set_conv_algorithm(before)


@pytest.fixture
def conv_algorithm():
    """fv.set_conv_algorithm, for a test that picks one (restored afterwards)."""
    return fv.set_conv_algorithm


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
