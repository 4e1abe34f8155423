"""The dispatcher's decisions: readable plans, sensible choices, the cost model's shape."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

import gpuconv
from gpuconv import _costs, _kernels, dispatch
from gpuconv._spec import ConvSpec


def test_plan_repr_names_choice_and_every_candidate():
    img = np.ones((512, 512), np.float32)
    ker = np.arange(9, dtype=np.float32).reshape(3, 3) ** 2
    p = gpuconv.plan(img, ker, "same")
    text = repr(p)
    assert p.algorithm in text and "chosen" in text
    for name in dispatch.algorithm_names():
        assert name in text
    assert "not rank 1" in text  # why separable does not apply
    assert p.estimates[p.algorithm] == min(p.estimates.values())


def test_small_kernels_direct_large_kernels_fft():
    img = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    rng = np.random.default_rng(1)
    small = gpuconv.plan(img, rng.standard_normal((5, 5)).astype(np.float32), "same")
    large = gpuconv.plan(img, rng.standard_normal((45, 45)).astype(np.float32), "same")
    assert small.algorithm == "direct"
    assert large.algorithm in ("fft", "overlap_add")


def test_rank_one_kernel_goes_separable():
    v = np.hanning(15).astype(np.float32)
    p = gpuconv.plan(np.ones((1024, 1024), np.float32), np.outer(v, v), "same")
    assert p.algorithm == "separable"


def test_cost_model_grows_with_work():
    c = dispatch.constants("cpu")
    for cost in (_costs.direct_cost, _costs.fft_cost, _costs.im2col_cost, _costs.separable_cost):
        small = ConvSpec(in_shape=(256, 256), kernel_shape=(5, 5), dtype=np.float32)
        big = ConvSpec(in_shape=(1024, 1024), kernel_shape=(5, 5), dtype=np.float32)
        assert 0 < cost(small, c) < cost(big, c)
    f32 = ConvSpec(in_shape=(512, 512), kernel_shape=(7, 7), dtype=np.float32)
    f64 = ConvSpec(in_shape=(512, 512), kernel_shape=(7, 7), dtype=np.float64)
    assert _costs.direct_cost(f32, c) < _costs.direct_cost(f64, c)


def test_set_constants_changes_the_choice():
    spec = ConvSpec(in_shape=(1024, 1024), kernel_shape=(9, 9), dtype=np.float32)
    saved = dispatch.constants("cpu")
    try:
        dispatch.set_constants("cpu", {"direct_mac_f32": 1e-15})
        assert dispatch.choose(spec).algorithm == "direct"
        dispatch.set_constants("cpu", {"direct_mac_f32": 1e-6})
        assert dispatch.choose(spec).algorithm != "direct"
    finally:
        dispatch.set_constants("cpu", saved)


def test_import_is_light():
    """import gpuconv loads neither numba, scipy nor cupy."""
    code = "import sys, gpuconv; print(sorted(m for m in ('numba', 'scipy', 'cupy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_kernel_sources_are_found():
    d = _kernels.source_dir()
    assert d.is_dir()
    assert all(p.suffix in (".cu", ".cuh") for p in _kernels.sources())
