"""Every documented error: scipy's exception types for the drop-ins, named arguments for ours."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss

import gpuconv
from gpuconv import dispatch
from gpuconv._spec import ConvSpec

ONE = np.ones(3)
TWO = np.ones((3, 3))

SCIPY_ERRORS = [
    ("convolve", (ONE, TWO), {}),
    ("correlate", (ONE, TWO), {}),
    ("convolve", (ONE, ONE), {"mode": "bad"}),
    ("correlate", (ONE, ONE), {"mode": "bad"}),
    ("convolve", (ONE, ONE), {"method": "bad"}),
    ("correlate", (ONE, ONE), {"method": "nope"}),
    ("convolve", (np.ones((3, 4)), np.ones((4, 3))), {"mode": "valid"}),
    ("correlate", (np.ones((3, 4)), np.ones((4, 3))), {"mode": "valid"}),
    ("convolve", (np.array([]), ONE), {}),
    ("convolve2d", (ONE, TWO), {}),
    ("correlate2d", (TWO, np.ones((1, 1, 1))), {}),
    ("convolve2d", (TWO, TWO), {"boundary": "nope"}),
    ("convolve2d", (TWO, TWO), {"boundary": "reflect"}),
    ("convolve2d", (TWO, TWO), {"mode": "nope"}),
    ("convolve2d", (TWO, TWO), {"fillvalue": [1, 2]}),
    ("convolve2d", (TWO, TWO), {"fillvalue": 1 + 1j}),
    ("convolve2d", (TWO.astype(int), TWO.astype(int)), {"fillvalue": 1e30}),
    ("convolve2d", (TWO.astype(int), TWO.astype(int)), {"fillvalue": "x"}),
    ("convolve2d", (TWO > 0, TWO > 0), {}),
    ("convolve2d", (TWO.astype(np.float16), TWO.astype(np.float16)), {}),
    ("correlate2d", (np.ones((3, 4)), np.ones((4, 3))), {"mode": "valid"}),
    ("fftconvolve", (ONE, TWO), {}),
    ("fftconvolve", (TWO, TWO), {"axes": 5}),
    ("fftconvolve", (TWO, TWO), {"axes": [0, 0]}),
    ("fftconvolve", (TWO, TWO), {"axes": []}),
    ("fftconvolve", (TWO, TWO), {"axes": 1.5}),
    ("fftconvolve", (np.ones((3, 4)), np.ones((2, 2))), {"axes": 0}),
    ("fftconvolve", (TWO, TWO), {"mode": "bad"}),
    ("oaconvolve", (np.ones((9, 4)), np.ones((2, 2))), {"mode": "bad"}),
    ("oaconvolve", (np.ones((3, 4)), np.ones((4, 3))), {"mode": "valid"}),
]


@pytest.mark.parametrize(
    "fn,args,kw", SCIPY_ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(SCIPY_ERRORS)]
)
def test_same_exception_as_scipy(fn, args, kw):
    with pytest.raises(Exception) as ref:
        getattr(ss, fn)(*args, **kw)
    with pytest.raises(type(ref.value)):
        getattr(gpuconv, fn)(*args, **kw)


def test_method_error_names_the_choices():
    with pytest.raises(ValueError, match="'auto', 'direct', or 'fft'.*im2col.*'bad'"):
        gpuconv.convolve(ONE, ONE, method="bad")


SPEC_ERRORS = [
    (dict(in_shape=(5,), kernel_shape=(3, 3)), ValueError, "dimensionality"),
    (dict(in_shape=(0,), kernel_shape=(3,)), ValueError, "spatial size"),
    (dict(in_shape=(5,), kernel_shape=(3,), stride=0), ValueError, "stride must be >= 1"),
    (dict(in_shape=(5,), kernel_shape=(3,), dilation=(1, 2)), ValueError, "one entry per spatial"),
    (dict(in_shape=(5,), kernel_shape=(3,), pad_lo=-1), ValueError, "pad_lo must be >= 0"),
    (dict(in_shape=(5,), kernel_shape=(3,), stride=1.5), TypeError, "stride must be an integer"),
    (dict(in_shape=(5,), kernel_shape=(3,), groups=True), TypeError, "groups must be an integer"),
    (dict(in_shape=(5,), kernel_shape=(3,), c_in=3, groups=2), ValueError, "divisible by groups"),
    (dict(in_shape=(5,), kernel_shape=(3,), batch=0), ValueError, "batch must be >= 1"),
    (dict(in_shape=(2,), kernel_shape=(3,)), ValueError, "shorter than the dilated kernel"),
    (dict(in_shape=(5,), kernel_shape=(3,), dtype=np.float16), TypeError, "not a compute dtype"),
]


@pytest.mark.parametrize("kw,exc,match", SPEC_ERRORS, ids=[e[2] for e in SPEC_ERRORS])
def test_spec_errors_name_the_argument(kw, exc, match):
    with pytest.raises(exc, match=match):
        ConvSpec(**kw)


def test_dispatch_errors():
    spec = ConvSpec(in_shape=(8,), kernel_shape=(3,))
    with pytest.raises(ValueError, match="unknown algorithm 'nope'"):
        dispatch.execute(spec, np.ones((1, 1, 8)), np.ones((1, 1, 3)), "nope")
    with pytest.raises(ValueError, match="do not match"):
        dispatch.execute(spec, np.ones((1, 1, 9)), np.ones((1, 1, 3)))
    with pytest.raises(ValueError, match="cannot solve"):
        dispatch.execute(spec, np.ones((1, 1, 8)), np.array([[[1.0, 2.0, 4.0]]]), "separable")
    with pytest.raises(ValueError, match="cost constants for cpu: unknown constants"):
        dispatch.set_constants("cpu", {"nope": 1.0})


def _out_of_memory(names, monkeypatch):
    """Make the CPU algorithms ``names`` fail as numpy does when an allocation fails."""
    for name in names:
        alg = dispatch.get_algorithm(name)

        def run(*args, name=name, **kwargs):
            raise MemoryError(f"Unable to allocate 9.00 GiB ({name}, test)")

        for module in {alg._impl(), alg._op_impl("forward")}:
            monkeypatch.setattr(module, "run", run)


def test_auto_falls_back_to_the_next_algorithm_when_memory_runs_out(monkeypatch, rng):
    a, k = rng.standard_normal((300, 300)), rng.standard_normal((41, 41))
    plan = gpuconv.plan(a, k, "same")
    assert plan.algorithm in ("fft", "overlap_add")
    _out_of_memory([plan.algorithm], monkeypatch)
    y = gpuconv.convolve(a, k, "same")  # the next algorithm by estimate
    np.testing.assert_allclose(y, ss.convolve(a, k, "same"), atol=1e-9 * np.abs(y).max())


def test_out_of_memory_everywhere_says_what_was_tried_and_what_to_do(monkeypatch, rng):
    a, k = rng.standard_normal((300, 300)), rng.standard_normal((41, 41))
    _out_of_memory(dispatch.algorithm_names(), monkeypatch)
    with pytest.raises(MemoryError) as e:
        gpuconv.convolve(a, k, "same")
    msg = str(e.value)
    assert "300x300 * 41x41" in msg and "fft: MemoryError: Unable to allocate" in msg
    assert "direct: MemoryError" in msg and "gpuconv.dask" in msg
    with pytest.raises(MemoryError, match="tried fft: MemoryError"):  # a named method: only it
        gpuconv.convolve(a, k, "same", method="fft")
