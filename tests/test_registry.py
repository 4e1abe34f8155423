"""Every registered algorithm against the plain reference and against every other algorithm.

Parametrised over the registry, so an algorithm is tested the day it is registered.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gpuconv import dispatch
from gpuconv._spec import ConvSpec

from .conftest import EPS, random_array
from .reference import reference

ALGORITHMS = dispatch.algorithm_names()

SPECS = [
    # 1-D: 'same' of an even kernel, stride, dilation, channels, groups, padding beyond the kernel
    dict(in_shape=(50,), kernel_shape=(6,), pad_lo=3, pad_hi=2, flip=True),
    dict(in_shape=(33,), kernel_shape=(5,), stride=2, dilation=3, pad_lo=4, pad_hi=7),
    dict(in_shape=(20,), kernel_shape=(3,), batch=2, c_in=4, c_out=6, groups=2, pad_lo=1, pad_hi=1),
    dict(in_shape=(7,), kernel_shape=(9,), pad_lo=8, pad_hi=8, flip=True),
    # 2-D
    dict(in_shape=(23, 31), kernel_shape=(3, 3), pad_lo=1, pad_hi=1, flip=True),
    dict(in_shape=(16, 17), kernel_shape=(4, 5), pad_lo=(2, 1), pad_hi=(1, 3)),
    dict(
        in_shape=(19, 13), kernel_shape=(3, 2), stride=(2, 3), dilation=(2, 1), pad_lo=2, pad_hi=0
    ),
    dict(
        in_shape=(12, 12),
        kernel_shape=(3, 3),
        batch=3,
        c_in=4,
        c_out=4,
        groups=4,
        pad_lo=1,
        pad_hi=1,
    ),
    dict(in_shape=(10, 9), kernel_shape=(3, 3), batch=2, c_in=3, c_out=5, pad_lo=0, pad_hi=0),
    dict(in_shape=(5, 4), kernel_shape=(7, 6), pad_lo=(6, 5), pad_hi=(6, 5), flip=True),
    # 3-D
    dict(in_shape=(9, 8, 7), kernel_shape=(3, 2, 3), pad_lo=1, pad_hi=(1, 0, 1), flip=True),
    dict(
        in_shape=(8, 9, 10), kernel_shape=(2, 3, 3), stride=2, dilation=(1, 2, 1), c_in=2, c_out=2
    ),
]
DTYPES = [np.float32, np.float64, np.complex64, np.complex128, np.int64]


def _spec_id(kw):
    return ",".join(f"{k}={v}" for k, v in kw.items() if k != "flip") + (
        ",flip" if kw.get("flip") else ""
    )


def _inputs(spec: ConvSpec, rng, separable: bool):
    x = random_array(rng, spec.x_shape, spec.dtype)
    if separable and spec.dtype.kind != "i":
        w = np.ones(spec.w_shape, dtype=np.complex128)
        for ax, n in enumerate(spec.kernel_shape):
            shape = [1] * (spec.ndim + 2)
            shape[2 + ax] = n
            w = w * (rng.standard_normal(shape) + 1.0)
        w = w * rng.standard_normal(spec.w_shape[:2] + (1,) * spec.ndim)
        w = (w if spec.is_complex else w.real).astype(spec.dtype)
    else:
        w = random_array(rng, spec.w_shape, spec.dtype)
    return x, w


def _tolerance(spec: ConvSpec, x, w) -> float:
    if spec.dtype.kind == "i":
        return 0.0
    mag = float(np.abs(x).max()) * float(np.abs(w).astype(np.float64).sum())
    n = max(np.prod(spec.padded_shape), 2)
    return 16 * EPS[spec.dtype] * np.log2(n + 1) * mag


@pytest.mark.parametrize("kw", SPECS, ids=_spec_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ALGORITHMS)
def test_algorithm_matches_reference(name, dtype, kw, rng):
    spec = ConvSpec(dtype=dtype, **kw)
    alg = dispatch.get_algorithm(name)
    x, w = _inputs(spec, rng, separable=(name == "separable"))
    reason = alg.supports(spec, w)
    if reason is not None:
        pytest.skip(f"{name}: {reason}")
    y = alg.run(spec, x, w)
    ref = reference(spec, x, w)
    assert y.shape == spec.y_shape and y.dtype == spec.dtype
    if spec.dtype.kind == "i":
        np.testing.assert_array_equal(y, ref)
    else:
        np.testing.assert_allclose(y, ref, rtol=0, atol=_tolerance(spec, x, w))


@pytest.mark.parametrize("kw", SPECS[::2], ids=_spec_id)
def test_algorithms_agree_with_each_other(kw, rng):
    spec = ConvSpec(dtype=np.float64, **kw)
    x, w = _inputs(spec, rng, separable=True)
    results = {}
    for name in ALGORITHMS:
        alg = dispatch.get_algorithm(name)
        if alg.supports(spec, w) is None:
            results[name] = alg.run(spec, x, w)
    assert len(results) >= 2, results.keys()
    tol = _tolerance(spec, x, w)
    for (a, ya), (b, yb) in itertools.combinations(results.items(), 2):
        np.testing.assert_allclose(ya, yb, rtol=0, atol=2 * tol, err_msg=f"{a} vs {b}")


def test_auto_runs_the_chosen_algorithm(rng):
    spec = ConvSpec(in_shape=(64, 64), kernel_shape=(5, 5), pad_lo=2, pad_hi=2, dtype=np.float32)
    x, w = _inputs(spec, rng, separable=False)
    plan = dispatch.choose(spec, w)
    y = dispatch.execute(spec, x, w)
    y_named = dispatch.execute(spec, x, w, plan.algorithm)
    np.testing.assert_array_equal(y, y_named)


def test_exact_excludes_rounding_algorithms():
    spec = ConvSpec(in_shape=(4096,), kernel_shape=(2048,), dtype=np.int64)
    plan = dispatch.choose(spec, exact=True)
    assert dispatch.get_algorithm(plan.algorithm).exact
    assert any(c.seconds is None and "float64" in c.reason for c in plan.candidates)
