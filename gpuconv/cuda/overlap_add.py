"""Overlap-save FFT convolution of the canonical problem on the GPU (registered as ``overlap_add``).

The design of :mod:`gpuconv.cpu.overlap_add` (despite the name, overlap-*save*: disjoint output
tiles, overlapping input tiles, no additions between tiles) on cuFFT, for large inputs with
medium or large kernels, where one full-size transform (:mod:`gpuconv.cuda.fft`) pays for long
mixed-radix lengths and a kernel spectrum as large as the image:

* **Tiles.**  Per spatial axis a transform length ``L`` (2-3-5-7-smooth, powers of two cheapest)
  and ``B = L - reach + 1`` stride-1 outputs per tile; ``T = ceil(need / B)`` tiles cover the
  ``need = (out - 1) * stride + 1`` stride-1 positions the output samples.  :func:`plan` picks the
  lengths jointly over the axes by :func:`cost`'s model under :data:`PLAN_CONSTANTS` (transform
  work, spectral product, bytes moved); split lengths are shorter than the axis's plain-FFT
  length (:func:`gpuconv.cuda.fft.lengths`), and an axis may stay whole (one tile).  When no
  axis is split :func:`supports` declines: plain FFT convolution is then the right algorithm.
* **Kernel spectrum** once per call at the tile lengths, the taps placed wrapped at
  ``(-d*u) mod L`` (:func:`gpuconv.cuda.fft.place` with shift 0), so the first ``B`` circular
  outputs of a tile are valid; the inverse transform's ``1/prod(L)`` is folded into it, so
  neither transform pays a normalisation pass.
* **Gather** (``tiles_gather_<dtype>``, kernels_cuda/tiles.cu): tiles ``(items, c_in, *L)`` of
  a range of flattened ``items = batch * ntiles`` straight from ``x``, the zero padding read at
  load time (no padded copy).
* **Transforms and product**: ``rfftn`` / ``fftn`` over the tile axes (CuPy's plan cache), the
  channel mixing of :mod:`gpuconv.cuda.fft` (``spectral_<c64|c128>``, the items as its batch),
  the inverse transform (``cupyx.scipy.fft`` with ``overwrite_x``: no copy before the C2R).
* **Scatter** (``tiles_scatter_<dtype>``): one thread per output of ``y`` in the chunk's tiles,
  stride applied on the fly (output ``p`` reads stride-1 position ``p * stride``), the epilogue
  ``act(y + bias[channel])`` fused in its store (float32 / float64; bias also for complex and
  int64), int64 rounded from float64.
* **Memory**: the items are processed in chunks whose buffers stay under
  :data:`MEMORY_BUDGET`; a chunk may start and end inside a batch item.

Precision as :mod:`gpuconv.cuda.fft` (float32 / complex64 single, the rest double; int64 through
float64, exact only for small magnitudes).  ``run(spec, x, w, out=None, *, bias=None, act=0,
slope=0.0)`` takes CuPy arrays and returns a CuPy array (``out`` when given).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gpuconv._spec import ConvSpec
from gpuconv.cuda import _build, _loader
from gpuconv.cuda import fft as _fft

SOURCE = "tiles.cu"
#: run() applies bias and activation in the scatter's store (gpuconv.dispatch passes them)
FUSED_EPILOGUE = True

# ---- limits and planning constants --------------------------------------------------------------
#: bytes of one chunk's buffers (tiles, their spectra, the products' spectra, the tile outputs).
MEMORY_BUDGET: int = 1 << 30
#: shortest split tile: below it the batched transforms are all overhead.
MIN_TILE: int = 16
#: largest tile (elements) the planner considers.
MAX_TILE_ELEMS: int = 1 << 26
#: split lengths kept per axis (best by a per-axis estimate) for the joint search.
AXIS_CANDIDATES: int = 8
#: the per-axis estimate's memory passes per tile element, in units of one log2 of a transform.
_PROXY_PASSES = 6.0
#: the kernels' 32-bit index range: each axis length and one tile plane stay below this.
_INDEX_LIMIT = 1 << 30
#: channels * items of one chunk stay below this (the kernels' int plane index plus gridDim.z).
_PLANES_LIMIT = 2**31 - 65536

#: The model the planner minimises (H100 guesses, as gpuconv.dispatch.CUDA_CONSTANTS: 2.9e12 B/s,
#: a 4320^2 complex transform in 0.3 ms).  Fixed here rather than the tuned constants so that
#: run() and cost() agree on the tiles whatever `gpuconv tune` measured.
_CUFFT_REF_N = 4320 * 4320
PLAN_CONSTANTS: dict[str, float] = {
    "stream_byte": 1.0 / 2.9e12,
    "fft_nlogn_f32": 0.3e-3 / (2 * _CUFFT_REF_N * math.log2(_CUFFT_REF_N)),
    "fft_nlogn_f64": 2 * 0.3e-3 / (2 * _CUFFT_REF_N * math.log2(_CUFFT_REF_N)),
    "spectral_cmac": 1.0 / 0.5e12,
    "overhead_overlap_add": 120e-6,
}


# ---- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TilePlan:
    """Per spatial axis: tile transform length, stride-1 outputs per tile, tiles, outputs needed."""

    lengths: tuple[int, ...]  # L
    valid: tuple[int, ...]  # B = L - reach + 1
    tiles: tuple[int, ...]  # T = ceil(need / B)
    need: tuple[int, ...]  # (out - 1) * stride + 1 stride-1 positions

    @property
    def split(self) -> tuple[bool, ...]:
        return tuple(t > 1 for t in self.tiles)

    @property
    def ntiles(self) -> int:
        return math.prod(self.tiles)

    @property
    def tile_size(self) -> int:
        return math.prod(self.lengths)


def _need(spec: ConvSpec) -> tuple[int, ...]:
    return tuple((o - 1) * s + 1 for o, s in zip(spec.out_shape, spec.stride))


def make_plan(spec: ConvSpec, lengths) -> TilePlan:
    """The plan of ``spec`` with tile lengths ``lengths`` (each at least the axis's reach)."""
    lengths = tuple(int(v) for v in lengths)
    if len(lengths) != spec.ndim:
        raise ValueError(f"{len(lengths)} tile lengths for {spec.ndim} spatial axes")
    for a, (L, R) in enumerate(zip(lengths, spec.reach)):
        if L < R:
            raise ValueError(f"axis {a}: tile length {L} is shorter than the kernel reach {R}")
    need = _need(spec)
    valid = tuple(L - R + 1 for L, R in zip(lengths, spec.reach))
    tiles = tuple(-(-n // b) for n, b in zip(need, valid))
    return TilePlan(lengths, valid, tiles, need)


@lru_cache(maxsize=4096)
def _len_weight(L: int) -> float:
    """log2 of a length-L transform, each radix weighted as cuFFT's speed (gpuconv.cuda.fft)."""
    return _fft._len_cost(L) / L


@lru_cache(maxsize=1024)
def _axis_options(need: int, reach: int, plain: int, even: bool) -> tuple[int, ...]:
    """Tile lengths to try on one axis: the whole axis in one tile, and the split lengths shorter
    than the plain FFT's length ``plain`` that a per-axis estimate likes best."""
    whole = _fft.fast_length(need + reach - 1, even=even)
    lo, hi = max(reach, MIN_TILE), min(whole, plain, MAX_TILE_ELEMS + 1) - 1
    scored = []
    for L in _fft.smooth_between(lo, hi, even) if need > 1 else ():
        T = -(-need // (L - reach + 1))
        if T > 1:  # one tile is the "whole" option
            scored.append((T * L * (_len_weight(L) + _PROXY_PASSES), L))
    scored.sort()
    return (whole,) + tuple(L for _, L in scored[:AXIS_CANDIDATES])


@lru_cache(maxsize=1024)
def _choose(spec: ConvSpec) -> tuple[int, ...]:
    real = spec.dtype.kind != "c"
    plain = _fft.lengths(spec, real)
    need = _need(spec)
    nd = spec.ndim
    options = []
    for a in range(nd):
        R = spec.reach[a]
        opts = _axis_options(need[a], R, plain[a], real and a == nd - 1)
        options.append([(L, L - R + 1, -(-need[a] // (L - R + 1))) for L in opts])
    best = None
    for combo in itertools.product(*options):
        L, B, T = zip(*combo)
        if math.prod(L) > MAX_TILE_ELEMS and best is not None:
            continue
        key = (_estimate(spec, TilePlan(L, B, T, need), PLAN_CONSTANTS), L)
        if best is None or key < best:
            best = key
    return best[1]


def plan(spec: ConvSpec) -> TilePlan:
    """The tiles :func:`run` uses for ``spec`` (1 to 3 spatial axes; cached per problem).

    >>> p = plan(ConvSpec(in_shape=(4096, 4096), kernel_shape=(31, 31), pad_lo=15, pad_hi=15,
    ...                   flip=True, dtype=np.float32))
    >>> all(p.split), all(t * b >= n for t, b, n in zip(p.tiles, p.valid, p.need))
    (True, True)
    """
    if spec.ndim > 3:
        raise ValueError(f"{spec.ndim} spatial axes; the GPU overlap-save path handles 1 to 3")
    return make_plan(spec, _choose(spec))


# ---- the cost model ---------------------------------------------------------------------------


def _work_dtype(dtype) -> np.dtype:
    return _fft._work_dtype(np.dtype(dtype))


def _complex_dtype(dtype) -> np.dtype:
    return np.dtype(np.result_type(_work_dtype(dtype), np.complex64))


def item_bytes(spec: ConvSpec, pl: TilePlan) -> int:
    """Bytes of one tile item's buffers: its tiles, their spectra, the products' spectra and the
    inverse transforms (cuFFT's work area comes on top)."""
    real = spec.dtype.kind != "c"
    F = math.prod(_fft.spectrum_shape(spec, pl.lengths, real))
    wsize = _work_dtype(spec.dtype).itemsize
    csize = _complex_dtype(spec.dtype).itemsize
    return (spec.c_in + spec.c_out) * (pl.tile_size * wsize + F * csize)


def items_chunk(spec: ConvSpec, pl: TilePlan, budget: int | None = None) -> int:
    """Tile items per chunk: their buffers under ``budget`` (default :data:`MEMORY_BUDGET`)."""
    budget = MEMORY_BUDGET if budget is None else budget
    cap = _PLANES_LIMIT // max(spec.c_in, spec.c_out)
    return max(1, min(spec.batch * pl.ntiles, budget // item_bytes(spec, pl), cap))


def _estimate(spec: ConvSpec, pl: TilePlan, c: dict, chunks: int = 1) -> float:
    real = spec.dtype.kind != "c"
    n = pl.tile_size
    items = spec.batch * pl.ntiles
    cig = spec.c_in // spec.groups
    cog = spec.c_out // spec.groups
    single = spec.dtype in (np.float32, np.complex64)
    unit = c["fft_nlogn_f32" if single else "fft_nlogn_f64"] * (1.0 if real else 2.0)
    # n log2 n of one tile transform, each radix weighted as cuFFT's speed (gpuconv.cuda.fft)
    work = n * sum(_len_weight(L) for L in pl.lengths)
    transforms = items * (spec.c_in + spec.c_out) + spec.c_out * cig
    F = math.prod(_fft.spectrum_shape(spec, pl.lengths, real))
    product = items * spec.groups * cig * cog * F * c["spectral_cmac"]
    wsize = _work_dtype(spec.dtype).itemsize
    csize = _complex_dtype(spec.dtype).itemsize
    moved = (
        math.prod(spec.x_shape) * spec.dtype.itemsize  # the gather reads x ...
        + items * spec.c_in * n * wsize  # ... and writes the tiles
        + items * (spec.c_in + spec.c_out) * F * csize  # the product reads X, writes Y
        + spec.batch * spec.c_out * math.prod(spec.out_shape) * (wsize + spec.dtype.itemsize)
    )
    # every chunk after the first repeats the five launches of a chunk
    overhead = c["overhead_overlap_add"] * (1.0 + 0.25 * (chunks - 1))
    return overhead + transforms * work * unit + product + moved * c["stream_byte"]


def cost(spec: ConvSpec, c: dict[str, float]) -> float:
    """Estimated seconds of :func:`run` under the constants ``c`` (``stream_byte``,
    ``fft_nlogn_f32`` / ``fft_nlogn_f64``, ``spectral_cmac``, ``overhead_overlap_add``).  Pure."""
    if spec.ndim > 3:
        return math.inf
    pl = plan(spec)
    chunks = -(-spec.batch * pl.ntiles // items_chunk(spec, pl))
    return _estimate(spec, pl, c, chunks)


# ---- supports / run -----------------------------------------------------------------------------


def supports(spec: ConvSpec) -> str | None:
    """None when the overlap-save path takes ``spec``, else why not."""
    if spec.ndim > 3:
        return f"{spec.ndim} spatial axes; the GPU overlap-save path handles 1 to 3"
    if spec.dtype.name not in _build.DTYPE_SUFFIX:
        return f"dtype {spec.dtype} has no GPU kernel"
    pl = plan(spec)
    if not any(pl.split):
        return "one tile covers the output on every axis (plain FFT convolution, 'fft', is better)"
    big = (
        *spec.in_shape, *spec.padded_shape, *spec.out_shape,
        *(t * b + L for t, b, L in zip(pl.tiles, pl.valid, pl.lengths)),
    )  # fmt: skip
    if max(big) >= _INDEX_LIMIT or pl.tile_size >= _INDEX_LIMIT:
        return "a spatial size or a tile exceeds the kernels' 32-bit index range"
    if pl.ntiles > 2**31 - 1 or spec.batch > 2**31 - 1:
        return "too many tiles or batch items"
    if max(spec.c_in, spec.c_out) > _PLANES_LIMIT:
        return "too many channels"
    real = spec.dtype.kind != "c"
    F = math.prod(_fft.spectrum_shape(spec, pl.lengths, real))
    hbytes = spec.c_out * (spec.c_in // spec.groups) * F * _complex_dtype(spec.dtype).itemsize
    if hbytes > _fft.MAX_KERNEL_SPECTRUM:
        return f"the kernel spectrum would take {hbytes / 2**30:.1f} GiB"
    return None


def _pad3(t, fill) -> tuple[int, ...]:
    return (fill,) * (3 - len(t)) + tuple(int(v) for v in t)


def tiles_launch(width: int, rows: int, planes: int):
    """(grid, block) of ``tiles_gather_*`` / ``tiles_scatter_*``: x covers ``width`` (the last
    axis) in whole warps with the fewest idle lanes (then the widest block), y the ``rows``
    (_build.TILES_ROWS per thread, grid-strided past 65535 blocks), z the ``planes`` (grid-strided past
    65535)."""
    t = _build.TILES_THREADS
    bx = min(range(32, t + 1, 32), key=lambda b: (-(-width // b) * b - width, -b))
    by = max(1, t // bx)
    gy = max(1, min(-(-rows // (by * _build.TILES_ROWS)), _build.GRID_YZ_MAX))
    return (-(-width // bx), gy, max(1, min(planes, _build.GRID_YZ_MAX))), (bx, by, 1)


def gather_args(spec: ConvSpec, pl: TilePlan, x, tiles, first_n: int, first_t: int, nitems: int):
    """The argument tuple of ``tiles_gather_*`` (geometry padded to 3-D, int32 scalars)."""
    ints = (
        first_n, first_t, nitems, spec.c_in, *_pad3(pl.tiles, 1), *_pad3(spec.in_shape, 1),
        *_pad3(spec.pad_lo, 0), *_pad3(pl.lengths, 1), *_pad3(pl.valid, 1),
    )  # fmt: skip
    return (x, tiles) + tuple(np.int32(v) for v in ints)


def scatter_args(spec: ConvSpec, pl: TilePlan, yt, y, bias, first_n, first_t, nitems, act, slope):
    """The argument tuple of ``tiles_scatter_*`` (bias None: a NULL pointer; slope float64)."""
    ints = (
        first_n, first_t, nitems, spec.c_out, *_pad3(pl.tiles, 1), *_pad3(pl.lengths, 1),
        *_pad3(pl.valid, 1), *_pad3(spec.out_shape, 1), *_pad3(spec.stride, 1), act,
    )  # fmt: skip
    return (yt, y, bias) + tuple(np.int32(v) for v in ints) + (np.float64(slope),)


def _transforms(cp, real: bool):
    """(forward(a, axes), inverse(a, s, axes)) over the tile axes, both unnormalised.

    With CuPy, ``cupyx.scipy.fft`` (its ``overwrite_x`` spares the copy CuPy makes before a C2R
    transform); otherwise (the tests' fake) ``cp.fft``.
    """
    sfft = None
    if hasattr(cp.fft, "config"):  # CuPy's own fft module, not a stand-in
        try:
            import cupyx.scipy.fft as sfft
        except Exception:  # pragma: no cover - an unusual CuPy build
            sfft = None
    if sfft is not None:
        if real:
            return (
                lambda a, axes: sfft.rfftn(a, axes=axes, overwrite_x=True),
                lambda a, s, axes: sfft.irfftn(a, s=s, axes=axes, norm="forward", overwrite_x=True),
            )
        return (
            lambda a, axes: sfft.fftn(a, axes=axes, overwrite_x=True),
            lambda a, s, axes: sfft.ifftn(a, s=s, axes=axes, norm="forward", overwrite_x=True),
        )
    if real:
        return (
            lambda a, axes: cp.fft.rfftn(a, axes=axes),
            lambda a, s, axes: cp.fft.irfftn(a, s=s, axes=axes, norm="forward"),
        )
    return (
        lambda a, axes: cp.fft.fftn(a, axes=axes),
        lambda a, s, axes: cp.fft.ifftn(a, s=s, axes=axes, norm="forward"),
    )


def kernel_spectrum(cp, forward, spec: ConvSpec, w, pl: TilePlan):
    """``(c_out, Cig, F)`` spectrum of the correlation kernel at the tile lengths, taps wrapped at
    ``(-d*u) mod L``, scaled by ``1/prod(L)`` (the inverse transform's normalisation)."""
    real = spec.dtype.kind != "c"
    cdtype = _complex_dtype(spec.dtype)
    arr = spec.kernel_for_correlation(w).astype(_work_dtype(spec.dtype), copy=False)
    for i in reversed(range(spec.ndim)):
        arr = _fft.place(cp, arr, 2 + i, pl.lengths[i], 0, spec.dilation[i])
    H = forward(arr, tuple(range(2, 2 + spec.ndim))).astype(cdtype, copy=False)
    H = H * cdtype.type(1.0 / pl.tile_size)
    F = math.prod(_fft.spectrum_shape(spec, pl.lengths, real))
    return cp.ascontiguousarray(H).reshape(spec.c_out, spec.c_in // spec.groups, F)


def run(spec: ConvSpec, x, w, out=None, *, bias=None, act: int = 0, slope: float = 0.0):
    """y of the canonical problem for CuPy arrays ``x``, ``w`` (into ``out`` when given), with
    ``act(y + bias[channel])`` fused into the scatter's store when ``bias`` / ``act`` are given."""
    from gpuconv.cuda.direct import epilogue_args, prepare

    cp, x, w, y = prepare(spec, x, w, out, supports(spec), "the GPU overlap-save path")
    bias, act, slope = epilogue_args(spec, bias, act, slope, cp)
    pl = plan(spec)
    real = spec.dtype.kind != "c"
    work = _work_dtype(spec.dtype)
    cdtype = _complex_dtype(spec.dtype)
    sfx = _build.DTYPE_SUFFIX[spec.dtype.name]
    gather = _loader.get_function(SOURCE, f"tiles_gather_{sfx}", _build.tiles_defines())
    scatter = _loader.get_function(SOURCE, f"tiles_scatter_{sfx}", _build.tiles_defines())
    spectral = _loader.get_function(
        _fft.SOURCE, f"spectral_{_build.DTYPE_SUFFIX[cdtype.name]}", _build.spectral_defines()
    )
    forward, inverse = _transforms(cp, real)

    L = pl.lengths
    axes = tuple(range(2, 2 + spec.ndim))
    fshape = _fft.spectrum_shape(spec, L, real)
    F = math.prod(fshape)
    H = kernel_spectrum(cp, forward, spec, w, pl)

    L3 = _pad3(L, 1)
    B3, S3 = _pad3(pl.valid, 1), _pad3(spec.stride, 1)
    E3 = tuple(-(-b // s) for b, s in zip(B3, S3))  # outputs of one tile per axis, at most
    items = spec.batch * pl.ntiles
    chunk = items_chunk(spec, pl)
    nob = -(-(spec.c_out // spec.groups) // _build.CO_PER_THREAD)
    for i0 in range(0, items, chunk):
        ni = min(chunk, items - i0)
        first_n, first_t = divmod(i0, pl.ntiles)
        tiles = cp.empty((ni, spec.c_in) + L, dtype=work)
        grid, block = tiles_launch(L3[2], L3[0] * L3[1], ni * spec.c_in)
        _loader.launch(gather, grid, block, gather_args(spec, pl, x, tiles, first_n, first_t, ni))
        X = forward(tiles, axes)
        del tiles
        X = cp.ascontiguousarray(X.astype(cdtype, copy=False))
        # Y is handed to the inverse transform as allocated: CuPy copies a view (a.base set)
        # before a 1-D transform
        Y = cp.empty((ni, spec.c_out) + fshape, dtype=cdtype)
        grid, block = _fft.spectral_launch(F, ni * spec.groups * nob)
        args = _fft.spectral_args(
            X.reshape(ni, spec.c_in, F), H, Y.reshape(ni, spec.c_out, F), F, ni, spec
        )
        _loader.launch(spectral, grid, block, args)
        del X
        yt = inverse(Y, L, axes)
        del Y
        yt = cp.ascontiguousarray(yt.astype(work, copy=False))
        grid, block = tiles_launch(E3[2], E3[0] * E3[1], ni * spec.c_out)
        args = scatter_args(spec, pl, yt, y, bias, first_n, first_t, ni, act, slope)
        _loader.launch(scatter, grid, block, args)
        del yt
    return y
