"""Property tests on random shapes: gpuconv equals scipy.signal wherever scipy answers."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_signal_scipy import _check

_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def problems(draw, max_ndim=3):
    nd = draw(st.integers(1, max_ndim))
    s1 = tuple(draw(st.lists(st.integers(1, 9), min_size=nd, max_size=nd)))
    s2 = tuple(draw(st.lists(st.integers(1, 6), min_size=nd, max_size=nd)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.complex128, np.int16, np.uint8]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    from .conftest import random_array

    return random_array(rng, s1, dtype), random_array(rng, s2, dtype)


MODES = st.sampled_from(["full", "same", "valid"])


@_settings
@given(
    problems(),
    MODES,
    st.sampled_from(["auto", "direct", "fft"]),
    st.sampled_from(["convolve", "correlate"]),
)
def test_nd_matches_scipy(ab, mode, method, fn):
    _check(fn, *ab, mode=mode, method=method)


@_settings
@given(
    problems(max_ndim=2).filter(lambda ab: ab[0].ndim == 2),
    MODES,
    st.sampled_from(["fill", "wrap", "symm"]),
    st.sampled_from([0, 3]),
    st.sampled_from(["convolve2d", "correlate2d"]),
)
def test_2d_matches_scipy(ab, mode, boundary, fill, fn):
    _check(fn, *ab, mode=mode, boundary=boundary, fillvalue=fill)


@_settings
@given(problems(), MODES, st.sampled_from(["fftconvolve", "oaconvolve"]))
def test_fft_fronts_match_scipy(ab, mode, fn):
    _check(fn, *ab, mode=mode)
