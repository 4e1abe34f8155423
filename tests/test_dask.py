"""gpuconv.dask: Dask arrays convolved chunk by chunk, against the in-memory call and scipy.signal.

Every result is computed block by block: each block must have the shape the lazy array's chunks
announce, and the assembled array must equal both gpuconv's in-memory call on the whole array
and scipy.signal's (same shape and dtype; exact for integers, within rounding otherwise).  The
grids cover uneven and one-element-thick chunks, odd and even kernels, kernels longer than a
chunk and than the array, every mode and every boundary of convolve2d.  Most tests use the
threaded scheduler; a smaller grid runs on a ``distributed.LocalCluster`` with two worker
processes.  CuPy-backed chunks are tested on a GPU (skipped without one).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import scipy.signal as ss

da = pytest.importorskip("dask.array")

import dask  # noqa: E402
from dask.callbacks import Callback  # noqa: E402

import gpuconv  # noqa: E402
import gpuconv.dask as gd  # noqa: E402
from tests.conftest import assert_conv_equal, random_array  # noqa: E402

THREADS = "threads"


# ---------------------------------------------------------------------------------------------
# helpers


def compute(y, scheduler=THREADS) -> np.ndarray:
    """Compute ``y`` block by block, checking every block against the announced chunks."""
    if y.ndim == 0:
        return y.compute(scheduler=scheduler)
    blocks = y.to_delayed()
    indices = list(np.ndindex(*y.numblocks))
    got = dask.compute(*[blocks[i] for i in indices], scheduler=scheduler)
    grid = np.empty(y.numblocks, dtype=object)
    for index, block in zip(indices, got):
        want = tuple(y.chunks[ax][i] for ax, i in enumerate(index))
        assert block.shape == want, f"block {index}: shape {block.shape}, chunks say {want}"
        assert block.dtype == y.dtype, f"block {index}: dtype {block.dtype}, y.dtype {y.dtype}"
        grid[index] = block
    return np.block(grid.tolist())


def check(y, expected_gpuconv, expected_scipy, a, k, scheduler=THREADS, what=""):
    assert isinstance(y, da.Array), what
    assert y.shape == np.shape(expected_gpuconv), (what, y.shape, np.shape(expected_gpuconv))
    assert y.dtype == np.asarray(expected_gpuconv).dtype, (what, y.dtype)
    out = compute(y, scheduler)
    try:
        assert_conv_equal(out, expected_gpuconv, a, k)
        if expected_scipy is not None:
            assert_conv_equal(out, expected_scipy, a, k)
    except AssertionError as e:
        raise AssertionError(f"{what}: {e}") from None


def quiet(f, *args, **kwargs):
    """Call ``f`` with the rechunk warning silenced (the grids include chunks that need it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gd.RechunkWarning)
        return f(*args, **kwargs)


# ---------------------------------------------------------------------------------------------
# import


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_gpuconv_does_not_import_dask():
    r = _run(
        "import sys, gpuconv; "
        "bad = [m for m in sys.modules if m == 'dask' or m.startswith(('dask.', 'distributed'))]; "
        "assert not bad, bad"
    )
    assert r.returncode == 0, r.stderr


def test_missing_dask_says_what_to_install():
    r = _run(
        "import sys; sys.modules['dask'] = None\n"
        "try:\n    import gpuconv.dask\nexcept ImportError as e:\n    print(e)\n"
        "else:\n    raise SystemExit('imported')"
    )
    assert r.returncode == 0, r.stderr
    assert 'pip install "gpuconv[dask]"' in r.stdout


# ---------------------------------------------------------------------------------------------
# convolve / correlate

CHUNKS_1D = [13, 4, (3, 1, 6, 2, 1), 1]  # one chunk, regular, uneven, one-element-thick
KERNELS_1D = [1, 2, 3, 4, 8, 20]  # odd, even, longer than most chunks, longer than the array


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.int16])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_nd_1d_grid(rng, name, mode, dtype):
    a = random_array(rng, 13, dtype)
    for m in KERNELS_1D:
        k = random_array(rng, m, dtype)
        want = getattr(gpuconv, name)(a, k, mode=mode)
        sp = getattr(ss, name)(a, k, mode=mode)
        for chunks in CHUNKS_1D:
            y = quiet(getattr(gd, name), da.from_array(a, chunks=chunks), k, mode=mode)
            check(y, want, sp, a, k, what=f"{name} m={m} chunks={chunks}")


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_nd_3d(rng, name, mode):
    a = random_array(rng, (6, 5, 7), np.float32)
    # the last kernel is larger than the array on every axis ('valid' swaps the operands)
    for kshape in [(3, 2, 4), (1, 5, 2), (2, 1, 1), (7, 5, 8)]:
        k = random_array(rng, kshape, np.float32)
        want = getattr(gpuconv, name)(a, k, mode=mode)
        sp = getattr(ss, name)(a, k, mode=mode)
        for chunks in [((2, 3, 1), (1, 4), 7), (6, 5, 7), 1]:
            y = quiet(getattr(gd, name), da.from_array(a, chunks=chunks), k, mode=mode)
            check(y, want, sp, a, k, what=f"{name} k={kshape} chunks={chunks}")


@pytest.mark.parametrize("method", ["direct", "fft", "im2col"])
def test_method_applies_to_every_chunk(rng, method):
    a = random_array(rng, (20, 17), np.float64)
    k = random_array(rng, (4, 3), np.float64)
    y = gd.convolve(da.from_array(a, chunks=(7, 6)), k, mode="same", method=method)
    check(y, gpuconv.convolve(a, k, "same"), ss.convolve(a, k, "same"), a, k)


@pytest.mark.parametrize("name", ["convolve", "correlate"])
def test_overlap_add_on_chunks_one_block_covers(rng, name):
    # each 100-sample chunk fits in one block; overlap-add over one block is the FFT (as in
    # memory), not an error only the chunked call raises
    a = random_array(rng, (3000,), np.float64)
    k = random_array(rng, (5,), np.float64)
    y = getattr(gd, name)(da.from_array(a, chunks=100), k, method="overlap_add")
    check(y, getattr(gpuconv, name)(a, k), getattr(ss, name)(a, k), a, k)


def test_a_named_algorithm_that_cannot_take_the_kernel_fails_at_the_call(rng):
    x = da.from_array(random_array(rng, (50, 50), np.float64), chunks=10)
    with pytest.raises(ValueError, match="separable.*rank 1"):
        gd.convolve(x, random_array(rng, (3, 3), np.float64), method="separable")
    ok = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])
    y = gd.convolve(x, ok, method="separable")
    check(y, gpuconv.convolve(x.compute(), ok), ss.convolve(x.compute(), ok), x.compute(), ok)


ZERO_CHUNKS = [
    ("convolve", ((3, 0), (2, 2)), (1, 3), {}),
    ("convolve", ((0, 3), (2, 0, 2)), (3, 1), {"mode": "same"}),
    ("correlate", ((1, 0, 2), (4,)), (2, 2), {"mode": "valid"}),
    ("convolve2d", ((3,), (2, 0, 2)), (3, 1), {"mode": "valid"}),
    ("convolve2d", ((1, 0, 2), (4,)), (3, 3), {"boundary": "symm"}),
    ("correlate2d", ((1, 0, 2), (0, 4)), (2, 3), {"boundary": "wrap", "mode": "same"}),
    ("fftconvolve", ((3, 0), (2, 2)), (1, 3), {}),
    ("oaconvolve", ((3, 0), (2, 2)), (2, 3), {"mode": "same"}),
    ("fftconvolve", ((3, 0), (2, 2)), (1, 3), {"axes": 1}),
]


@pytest.mark.parametrize("name, chunks, kshape, kw", ZERO_CHUNKS)
def test_zero_length_chunks(rng, name, chunks, kshape, kw):
    # explicit chunks may have length 0; such a chunk used to reach the in-memory call, whose
    # rules for empty inputs gave a wrong shape (silently) or an error
    a = random_array(rng, (3, 4), np.float64)
    k = random_array(rng, kshape, np.float64)
    y = getattr(gd, name)(da.from_array(a, chunks=chunks), k, **kw)
    check(y, getattr(gpuconv, name)(a, k, **kw), getattr(ss, name)(a, k, **kw), a, k)


def test_integers_exact_and_wrapping(rng):
    # int8 results wrap as in memory; large int64 products are summed exactly
    a = rng.integers(-128, 128, 40).astype(np.int8)
    k = rng.integers(-128, 128, 5).astype(np.int8)
    y = gd.convolve(da.from_array(a, chunks=7), k, mode="same")
    np.testing.assert_array_equal(compute(y), gpuconv.convolve(a, k, "same"))
    assert y.dtype == np.int8
    a = rng.integers(-(2**40), 2**40, 30)
    k = rng.integers(-(2**20), 2**20, 4)
    y = gd.correlate(da.from_array(a, chunks=6), k, mode="full")
    np.testing.assert_array_equal(compute(y), ss.correlate(a, k, "full"))


def test_same_keeps_the_chunks(rng):
    a = random_array(rng, (30, 20), np.float64)
    x = da.from_array(a, chunks=((10, 12, 8), (5, 15)))
    for m in [(3, 3), (4, 2), (5, 6)]:
        y = gd.convolve(x, np.ones(m), mode="same")
        assert y.chunks == x.chunks
        y = gd.convolve2d(x, np.ones(m), mode="same", boundary="symm")
        assert y.chunks == x.chunks


def test_scalars_and_empty():
    y = gd.convolve(da.from_array(np.array(3.0)), np.array(2.0))
    assert y.shape == () and compute(y) == 6.0
    y = gd.correlate(da.from_array(np.array(1 + 1j)), np.array(1j))
    assert compute(y) == (1 + 1j) * -1j
    # empty operands: the in-memory answer, or its error (scipy's), at once
    with pytest.raises(ValueError, match="cannot be empty"):
        gpuconv.convolve(np.zeros(0), np.ones(3))
    with pytest.raises(ValueError, match="cannot be empty"):
        gd.convolve(da.zeros((0,), chunks=1), np.ones(3))
    y = gd.fftconvolve(da.zeros((0, 4), chunks=2), np.ones((2, 2)))
    assert y.shape == gpuconv.fftconvolve(np.zeros((0, 4)), np.ones((2, 2))).shape


# ---------------------------------------------------------------------------------------------
# convolve2d / correlate2d

BOUNDARIES = [("fill", 0), ("fill", 1.5), ("wrap", 0), ("symm", 0)]
CHUNKS_2D = [(11, 9), (4, 3), ((4, 4, 3), (2, 5, 2)), (1, (3, 1, 5))]
KERNELS_2D = [(3, 3), (2, 4), (4, 1), (12, 10)]  # the last is larger than the array


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("boundary,fillvalue", BOUNDARIES)
@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
def test_2d_grid(rng, name, boundary, fillvalue, mode):
    a = random_array(rng, (11, 9), np.float64)
    for kshape in KERNELS_2D:
        k = random_array(rng, kshape, np.float64)
        kw = dict(mode=mode, boundary=boundary, fillvalue=fillvalue)
        want = getattr(gpuconv, name)(a, k, **kw)
        sp = getattr(ss, name)(a, k, **kw)
        for chunks in CHUNKS_2D:
            y = quiet(getattr(gd, name), da.from_array(a, chunks=chunks), k, **kw)
            check(y, want, sp, a, k, what=f"{name} k={kshape} chunks={chunks}")


@pytest.mark.parametrize("dtype", [np.int32, np.complex64, np.float32])
@pytest.mark.parametrize("boundary,fillvalue", [*BOUNDARIES, ("fill", 2.5 - 1j), ("pad", 7)])
@pytest.mark.parametrize("name", ["convolve2d", "correlate2d"])
def test_2d_dtypes(rng, name, boundary, fillvalue, dtype):
    a = random_array(rng, (10, 13), dtype)
    k = random_array(rng, (4, 3), dtype)
    for mode in ["full", "same"]:
        kw = dict(mode=mode, boundary=boundary, fillvalue=fillvalue)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            try:
                want = getattr(gpuconv, name)(a, k, **kw)
            except ValueError as e:  # a complex fill value for an integer result, as scipy
                with pytest.raises(ValueError) as got:
                    getattr(gd, name)(da.from_array(a, chunks=(4, 5)), k, **kw)
                assert str(got.value) == str(e)
                continue
            sp = getattr(ss, name)(a, k, **kw)
            y = getattr(gd, name)(da.from_array(a, chunks=(4, 5)), k, **kw)
        check(y, want, sp, a, k, what=f"{name} {mode}")


def test_2d_kernel_longer_than_the_array_wraps_and_mirrors_repeatedly(rng):
    # pads wider than the image: numpy.pad's wrap / symmetric repeat, as scipy does
    a = random_array(rng, (4, 3), np.float64)
    k = random_array(rng, (11, 8), np.float64)
    for boundary in ["wrap", "symm"]:
        for name in ["convolve2d", "correlate2d"]:
            for mode in ["same", "full"]:
                want = getattr(gpuconv, name)(a, k, mode, boundary)
                sp = getattr(ss, name)(a, k, mode, boundary)
                y = quiet(getattr(gd, name), da.from_array(a, chunks=(1, 2)), k, mode, boundary)
                check(y, want, sp, a, k, what=f"{name} {mode} {boundary}")


# ---------------------------------------------------------------------------------------------
# fftconvolve / oaconvolve

FFT_CASES = [
    # (in1 shape, kernel shape, axes)
    ((4, 30), (1, 5), -1),  # one filter over the rows
    ((4, 30), (4, 6), -1),  # one filter per row: each chunk takes its rows of the kernel
    ((4, 30), (4, 6), None),
    ((1, 30), (3, 5), -1),  # in1 broadcast over the kernel's rows
    ((6, 7, 8), (3, 2, 4), None),
    ((6, 7, 8), (1, 7, 3), [0, 2]),
    ((6, 1, 8), (6, 3, 1), [1]),  # nothing left to transform: a product
    ((5, 6), (9, 10), None),  # kernel larger than the array
    ((4, 30), (4, 1), -1),
]


@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("name", ["fftconvolve", "oaconvolve"])
def test_fft_axes(rng, name, mode):
    for s1, s2, axes in FFT_CASES:
        for dtype in [np.float32, np.int16]:  # int16 computes in float64
            a = random_array(rng, s1, dtype)
            k = random_array(rng, s2, dtype)
            want = getattr(gpuconv, name)(a, k, mode=mode, axes=axes)
            sp = getattr(ss, name)(a, k, mode=mode, axes=axes)
            grid = [2, 1] if len(s1) < 3 else [2]  # one-element chunks of 3-D cost many tasks
            for chunks in grid if dtype == np.float32 else [s1]:
                x = da.from_array(a, chunks=chunks)
                y = quiet(getattr(gd, name), x, k, mode=mode, axes=axes)
                check(y, want, sp, a, k, what=f"{name} {s1}*{s2} axes={axes} chunks={chunks}")


def test_fft_only_the_convolved_axes_get_halos(rng):
    a = random_array(rng, (6, 40), np.float64)
    x = da.from_array(a, chunks=(1, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error", gd.RechunkWarning)
        y = gd.fftconvolve(x, np.ones((1, 7)), mode="same", axes=1)
    assert y.chunks == x.chunks  # the rows stay one per chunk: no halo, no rechunk


# ---------------------------------------------------------------------------------------------
# rechunking, laziness, errors


def test_rechunk_warning_when_chunks_are_smaller_than_the_halo(rng):
    a = random_array(rng, 30, np.float64)
    x = da.from_array(a, chunks=2)
    with pytest.warns(gd.RechunkWarning, match=r"axis 0: .*halo of 3 before and 2 after"):
        y = gd.convolve(x, np.ones(6), mode="same")
    assert len(y.chunks[0]) < 15 and min(y.chunks[0][1:-1]) >= 3, y.chunks
    check(y, gpuconv.convolve(a, np.ones(6), "same"), None, a, np.ones(6))
    with warnings.catch_warnings():
        warnings.simplefilter("error", gd.RechunkWarning)
        gd.convolve(x, np.ones(5), mode="same")  # halo 2 + 2 fits in chunks of 2
        gd.convolve(da.from_array(a, chunks=30), np.ones(40), mode="same")  # one chunk


def test_lazy_graph_on_an_array_that_does_not_fit_in_memory():
    x = da.zeros((100_000, 100_000), chunks=4_000, dtype=np.float32)  # 40 GB
    k = np.ones((9, 9), np.float32)
    started = []
    t0 = time.perf_counter()
    with Callback(pretask=lambda key, dsk, state: started.append(key)):
        ys = [
            gd.convolve(x, k, mode="same"),
            gd.convolve2d(x, k, mode="full", boundary="symm"),
            gd.fftconvolve(x, k, mode="valid"),
            gd.correlate2d(x, k[:, :4], mode="same", boundary="wrap"),
        ]
    assert not started, "tasks ran while building the graph"
    assert time.perf_counter() - t0 < 20
    assert ys[0].shape == x.shape and ys[0].chunks == x.chunks and ys[0].dtype == np.float32
    assert ys[1].shape == (100_008, 100_008)
    assert ys[2].shape == (99_992, 99_992)
    # a corner needs only the chunks it touches
    np.testing.assert_allclose(ys[1][:3, :3].compute(scheduler=THREADS), 0)


def test_numpy_input_is_wrapped(rng):
    a = random_array(rng, (12, 12), np.float64)
    y = gd.correlate2d(a, np.ones((2, 3)), mode="same")
    assert isinstance(y, da.Array)
    check(y, gpuconv.correlate2d(a, np.ones((2, 3)), "same"), None, a, np.ones((2, 3)))


def test_errors():
    x = da.ones((10, 10), chunks=5)
    with pytest.raises(TypeError, match=r"in2 must be an in-memory array .*compute\(\)"):
        gd.convolve(x, da.ones((3, 3)))
    with pytest.raises(TypeError, match="weight must be an in-memory array"):
        gd.conv2d(da.ones((2, 1, 5, 5)), da.ones((1, 1, 3, 3)))
    with pytest.raises(TypeError, match="in1 must be a dask.array.Array"):
        gd.convolve(dask.delayed(np.ones)(3), np.ones(2))
    with pytest.raises(ValueError, match=r"same dimensionality \(in1 has shape \(10, 10\)"):
        gd.convolve(x, np.ones(3))
    with pytest.raises(ValueError, match=r"2-D arrays \(got shapes \(3, 3, 3\) and \(2, 2\)"):
        gd.convolve2d(da.ones((3, 3, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="same dimensionality"):
        gd.fftconvolve(x, np.ones(3))
    with pytest.raises(ValueError, match="must both be 2-D"):
        gd.convolve2d(da.ones(10), np.ones(3))
    with pytest.raises(ValueError, match="Acceptable mode flags"):
        gd.convolve(x, np.ones((3, 3)), mode="middle")
    with pytest.raises(ValueError, match="Acceptable boundary flags"):
        gd.convolve2d(x, np.ones((3, 3)), boundary="reflectish")
    with pytest.raises(ValueError, match="at least as large as the other in every dimension"):
        gd.convolve(x, np.ones((12, 3)), mode="valid")
    with pytest.raises(ValueError, match="at least as large as the other in every dimension"):
        gd.correlate2d(x, np.ones((12, 3)), mode="valid")
    with pytest.raises(ValueError, match="incompatible shapes"):
        gd.fftconvolve(da.ones((3, 10)), np.ones((2, 3)), axes=1)
    with pytest.raises(ValueError, match="not available for this type"):
        gd.convolve2d(da.ones((4, 4), dtype=bool), np.ones((2, 2), bool))
    unknown = da.ones(10, chunks=5)
    unknown = unknown[unknown > 0]
    with pytest.raises(ValueError, match=r"unknown chunk sizes .*compute_chunk_sizes"):
        gd.convolve(unknown, np.ones(3))
    with pytest.raises(ValueError, match=r"conv2d: expected a 3-D \(unbatched\) or 4-D"):
        gd.conv2d(da.ones((5, 5)), np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="expects 2 input channels"):
        gd.conv2d(da.ones((2, 3, 5, 5)), np.ones((1, 2, 3, 3)))


# ---------------------------------------------------------------------------------------------
# conv1d / conv2d / conv3d


def test_conv2d_batch_split(rng):
    a = random_array(rng, (7, 4, 9, 8), np.float32)
    w = random_array(rng, (6, 2, 3, 2), np.float32)
    b = random_array(rng, 6, np.float32)
    x = da.from_array(a, chunks=(2, 4, 9, 8))
    cases = [
        dict(),
        dict(stride=2, padding=1, groups=2),
        dict(padding="same", dilation=(2, 1), groups=2),
        dict(padding=(2, 1), padding_mode="reflect", groups=2),
    ]
    for kw in cases:
        kw.setdefault("groups", 1)
        ww = w if kw["groups"] == 2 else random_array(rng, (6, 4, 3, 2), np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("error", gd.RechunkWarning)
            y = gd.conv2d(x, ww, b, **kw)
        assert y.chunks[0] == (2, 2, 2, 1), y.chunks
        want = gpuconv.conv2d(a, ww, b, **kw)
        check(y, want, None, a, ww, what=str(kw))


def test_conv_passes_further_keywords_to_every_chunk(rng):
    a = random_array(rng, (5, 3, 8, 8), np.float32)
    w = random_array(rng, (4, 3, 3, 3), np.float32)
    b = random_array(rng, 4, np.float32)
    kw = dict(padding=1, activation="leaky_relu", negative_slope=0.2)
    y = gd.conv2d(da.from_array(a, chunks=(2, 3, 8, 8)), w, b, **kw)
    check(y, gpuconv.conv2d(a, w, b, **kw), None, a, w)


def test_conv_rechunks_channels_and_spatial_with_a_warning(rng):
    a = random_array(rng, (5, 3, 10, 10), np.float64)
    w = random_array(rng, (2, 3, 3, 3), np.float64)
    with pytest.warns(gd.RechunkWarning, match="only the batch axis may be split"):
        y = gd.conv2d(da.from_array(a, chunks=(2, 1, 4, 5)), w, padding=1)
    assert y.chunks == ((2, 2, 1), (2,), (10,), (10,))
    check(y, gpuconv.conv2d(a, w, padding=1), None, a, w)


def test_conv3d_and_conv1d_and_unbatched(rng):
    a = random_array(rng, (5, 2, 6, 5, 4), np.float64)
    w = random_array(rng, (3, 2, 2, 3, 2), np.float64)
    y = gd.conv3d(da.from_array(a, chunks=(2, 2, 6, 5, 4)), w, stride=(1, 2, 1), padding=1)
    check(y, gpuconv.conv3d(a, w, stride=(1, 2, 1), padding=1), None, a, w)
    a1 = random_array(rng, (9, 3, 20), np.complex64)
    w1 = random_array(rng, (4, 3, 5), np.complex64)
    y = gd.conv1d(da.from_array(a1, chunks=(4, 3, 20)), w1, dilation=2)
    check(y, gpuconv.conv1d(a1, w1, dilation=2), None, a1, w1)
    y = gd.conv2d(da.from_array(a[0, :, 0], chunks=(2, 5, 4)), w[:, :, 0], padding="same")
    check(y, gpuconv.conv2d(a[0, :, 0], w[:, :, 0], padding="same"), None, a, w)


# ---------------------------------------------------------------------------------------------
# on a distributed LocalCluster with two worker processes


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster:
        with distributed.Client(cluster, set_as_default=False) as c:
            yield c


def test_distributed_grid(client, rng):
    a1 = random_array(rng, 50, np.float64)
    a2 = random_array(rng, (13, 11), np.float32)
    a3 = random_array(rng, (5, 40), np.float64)
    cases = []
    for mode in ["full", "same", "valid"]:
        for m in [4, 7]:
            k = random_array(rng, m, np.float64)
            for name in ["convolve", "correlate"]:
                cases.append((name, a1, (7, 3, 1, 20, 19), k, dict(mode=mode)))
        for boundary in ["fill", "wrap", "symm"]:
            k = random_array(rng, (4, 3), np.float32)
            for name in ["convolve2d", "correlate2d"]:
                cases.append(
                    (name, a2, ((5, 1, 7), 4), k, dict(mode=mode, boundary=boundary, fillvalue=2))
                )
        k = random_array(rng, (1, 6), np.float64)
        cases.append(("fftconvolve", a3, (2, 9), k, dict(mode=mode, axes=-1)))
        cases.append(("oaconvolve", a3, (2, 9), k, dict(mode=mode, axes=-1)))
    for name, a, chunks, k, kw in cases:
        y = quiet(getattr(gd, name), da.from_array(a, chunks=chunks), k, **kw)
        want = getattr(gpuconv, name)(a, k, **kw)
        check(y, want, getattr(ss, name)(a, k, **kw), a, k, scheduler=client, what=f"{name} {kw}")


def test_distributed_conv2d(client, rng):
    a = random_array(rng, (9, 3, 12, 10), np.float32)
    w = random_array(rng, (4, 3, 3, 3), np.float32)
    y = gd.conv2d(da.from_array(a, chunks=(2, 3, 12, 10)), w, stride=2, padding=1)
    check(y, gpuconv.conv2d(a, w, stride=2, padding=1), None, a, w, scheduler=client)


# ---------------------------------------------------------------------------------------------
# CuPy-backed chunks on the GPU


@pytest.mark.gpu
def test_cupy_chunks_stay_on_the_gpu(gpu, rng):
    cupy = gpu
    a = random_array(rng, (40, 33), np.float32)
    k = random_array(rng, (5, 4), np.float32)
    x = da.from_array(a, chunks=(16, 10)).map_blocks(cupy.asarray)
    for name, kw in [
        ("convolve", dict(mode="same")),
        ("correlate", dict(mode="full")),
        ("convolve2d", dict(mode="same", boundary="symm")),
        ("correlate2d", dict(mode="full", boundary="wrap")),
        ("fftconvolve", dict(mode="valid")),
    ]:
        y = getattr(gd, name)(x, k, **kw)
        assert isinstance(y._meta, cupy.ndarray), name
        out = y.compute(scheduler=THREADS)
        assert isinstance(out, cupy.ndarray), name
        assert_conv_equal(out.get(), getattr(gpuconv, name)(a, k, **kw), a, k)
    # a CuPy kernel works too (it follows the chunks)
    y = gd.convolve(x, cupy.asarray(k), mode="same")
    assert_conv_equal(y.compute(scheduler=THREADS).get(), gpuconv.convolve(a, k, "same"), a, k)


@pytest.mark.gpu
def test_cupy_chunks_conv2d(gpu, rng):
    cupy = gpu
    a = random_array(rng, (6, 3, 16, 16), np.float32)
    w = random_array(rng, (8, 3, 3, 3), np.float32)
    b = random_array(rng, 8, np.float32)
    x = da.from_array(a, chunks=(2, 3, 16, 16)).map_blocks(cupy.asarray)
    y = gd.conv2d(x, w, b, padding=1)
    out = y.compute(scheduler=THREADS)
    assert isinstance(out, cupy.ndarray)
    assert_conv_equal(out.get(), gpuconv.conv2d(a, w, b, padding=1), a, w)


def test_the_kernel_is_one_graph_key_not_a_copy_per_task(rng):
    """A distributed scheduler ships each task's spec to a worker: the kernel must be a
    dependency (one key, fetched once per worker), not pickled into every chunk's task."""
    cloudpickle = pytest.importorskip("cloudpickle")
    a = random_array(rng, (96, 96), np.float32)
    x = da.from_array(a, chunks=24)
    k = random_array(rng, (41, 41), np.float32)
    for name, kw in [("convolve", dict(mode="same")), ("convolve2d", dict(boundary="symm")),
                     ("fftconvolve", dict(mode="full"))]:  # fmt: skip
        y = getattr(gd, name)(x, k, **kw)
        sizes = sorted(len(cloudpickle.dumps(t)) for t in dict(y.__dask_graph__()).values())
        # one key holds the kernel; every chunk's task only refers to it
        assert sum(size >= k.nbytes for size in sizes) == 1, (name, sizes[-3:])
        want = getattr(gpuconv, name)(a, k, **kw)
        assert_conv_equal(y.compute(scheduler=THREADS), want, a, k)
