"""Implicit GEMM on the GPU: kernels_cuda/igemm.cu, one SIMT GEMM kernel, no column matrix.

The convolution is the GEMM of :mod:`gpuconv.cuda.im2col` per group,
``Y_g (Cog x nb*P) = W~_g (Cog x Cig*K) @ col_g (Cig*K x nb*P)``, but the column matrix is never
written: every block gathers its 8 x BN slice of ``col`` from ``x`` into shared memory (zero
padding read at load time) while it multiplies the previous slice, so the im2col pass (as much
traffic as the GEMM on the ResNet-50 layers) disappears.  The bias and activation are fused into
the kernel's store (``act(y + bias[channel])``, codes of :mod:`gpuconv._epilogue`).

* float32 and float64 only (no tensor cores, no TF32: results are plain FMA sums); 1 to 3
  spatial axes, stride, dilation, padding, groups, batch.  Convolution (``flip``) passes the
  reversed filter (one copy of w, the smallest array).
* Tiles (:data:`IGEMM_TILES`): float32 128 x 128 (8 x 8 accumulators a thread) or 64 x 128 (for
  ``Cog <= 64``, and where 128-row tiles leave SMs idle), float64 64 x 64.
* Split K: when the tiles are too few to fill the GPU (the deep ResNet layers: 52-196 tiles of
  128 x 128 for 132 SMs), K is cut into ranges computed by separate blocks into a workspace of
  partial results, which ``igemm_reduce_<dtype>`` sums in a fixed order (deterministic) with the
  epilogue.  The workspace stays under :data:`WORKSPACE_BUDGET`.
* :func:`plan` picks the tile and split count by a small wave model (:func:`tile_model`) under
  :data:`PLAN_CONSTANTS`; :func:`cost` prices that plan under the dispatcher's constants.
* The batch is split into launches of at most :data:`MAX_N` GEMM columns (the kernel's column
  index is an int).

``run(spec, x, w, out=None, *, bias=None, act=0, slope=0.0, tile=None, splits=None)`` takes CuPy
arrays of ``spec.dtype`` and returns a CuPy array (``out`` when given) written on the current
stream.  Predictions for the ResNet-50 layers: bench/NOTES-gpu-implicit-gemm.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gpuconv._spec import ConvSpec
from gpuconv.cuda import _build, _loader

SOURCE = "igemm.cu"
#: run() applies bias and activation in the kernel's store (gpuconv.dispatch passes them)
FUSED_EPILOGUE = True

IGEMM_THREADS = _build.IGEMM_THREADS
IGEMM_BK = _build.IGEMM_BK
IGEMM_TILES = _build.IGEMM_TILES


igemm_defines = _build.igemm_defines


def variants() -> list[tuple[str, dict, list[str]]]:
    """The implicit-GEMM entries of ``gpuconv.cuda._build.variants()``."""
    return [v for v in _build.variants() if v[0] == SOURCE]


# ---- limits ---------------------------------------------------------------------------------
#: every spatial size, padding, dilated kernel reach and out * stride stays below this (int
#: arithmetic on input coordinates inside the kernel).
MAX_INDEX = 1 << 30
#: output positions of one plane (P) stay below this (int in-plane indices).
MAX_PLANE = 1 << 30
#: GEMM columns (batch items * P) of one launch: the kernel's column index is an int and a block
#: may run a tile past the end.
MAX_N = 2**31 - 1 - 4096
#: the kernel's K = Cig * taps is an int advanced in steps of 8.
MAX_K = 2**31 - 1 - 64
# grid.y (M tiles) and grid.z (groups * K splits) are capped at _build.GRID_YZ_MAX; the kernels
# grid-stride past it (the reduce kernel's grid.y over planes too).
_INT_MAX = 2**31 - 1

# ---- the plan model (choice and cost) --------------------------------------------------------
#: SMs of the device the cost model assumes (H100 SXM); run() asks the device it runs on.
DEFAULT_SMS = 132
#: a saturated SM's MAC rate per tile relative to the float32 128 x 128 tile (predictions, not
#: measured: 64 x 128 does 32 FMAs a k per thread against 64 for the same per-step load work).
TILE_EFFICIENCY: dict[tuple[str, int, int], float] = {
    ("f32", 128, 128): 1.0,
    ("f32", 64, 128): 0.85,
    ("f64", 64, 64): 1.0,
}
#: an SM holding a single block (8 warps) runs at this fraction of its saturated rate.
LONE_BLOCK_RATE = 0.7
#: most K splits considered, and the most bytes their partial results may take at once.
MAX_SPLITS = 16
WORKSPACE_BUDGET: int = 256 << 20
#: seconds of the reduce kernel's launch (split K only).
REDUCE_LAUNCH = 5e-6
#: The constants the planner minimises (those of gpuconv.dispatch.CUDA_CONSTANTS, H100 guesses).
#: Fixed here rather than the tuned ones so that run() and cost() agree on the plan whatever
#: `gpuconv tune` measured.
PLAN_CONSTANTS: dict[str, float] = {
    "stream_byte": 1.0 / 2.9e12,
    "gemm_mac_f32": 1.0 / 25e12,
    "gemm_mac_f64": 1.0 / 12e12,
    "igemm_penalty": 1.4,
    "overhead_implicit_gemm": 15e-6,
}


@dataclass(frozen=True)
class IgPlan:
    """How :func:`run` computes a problem: ``bm`` x ``bn`` tiles, K cut into ``splits`` ranges
    (1: no split, the epilogue in the GEMM kernel; more: partial sums in a workspace, summed
    with the epilogue by ``igemm_reduce_*``)."""

    bm: int
    bn: int
    splits: int = 1


def suffix(spec: ConvSpec) -> str:
    return _build.DTYPE_SUFFIX[spec.dtype.name]


def supports(spec: ConvSpec) -> str | None:
    """None when ``igemm_<f32|f64>`` solves ``spec``, else why not."""
    if spec.dtype.name not in ("float32", "float64"):
        return f"dtype {spec.dtype} has no implicit-GEMM kernel (float32 and float64 only)"
    if spec.ndim > 3:
        return f"{spec.ndim} spatial axes; the implicit-GEMM kernel handles 1 to 3"
    P = math.prod(spec.out_shape)
    if P >= MAX_PLANE:
        return f"{P} outputs per plane (limit {MAX_PLANE})"
    if math.prod(spec.in_shape) >= _INT_MAX:
        return "an input plane has 2**31 or more elements"
    big = (
        *spec.in_shape, *spec.pad_lo, *spec.pad_hi, *spec.reach,
        *(s * o for s, o in zip(spec.stride, spec.out_shape)),
    )  # fmt: skip
    if max(big) >= MAX_INDEX:
        return "a spatial size or padding exceeds the kernel's 32-bit index range"
    if (spec.c_in // spec.groups) * math.prod(spec.kernel_shape) > MAX_K:
        return "the GEMM's inner dimension (c_in / groups * taps) exceeds the kernel's int range"
    if max(spec.c_in, spec.c_out) > _INT_MAX - 4096:
        return "too many channels"
    return None


def tiles_for(spec: ConvSpec) -> list[tuple[int, int]]:
    """The compiled (BM, BN) tiles of ``spec``'s dtype."""
    s = suffix(spec)
    return [(m, n) for d, m, n in IGEMM_TILES if d == s]


def _steps(spec: ConvSpec) -> int:
    K = (spec.c_in // spec.groups) * math.prod(spec.kernel_shape)
    return -(-K // IGEMM_BK)


def tile_model(spec: ConvSpec, bm: int, bn: int, splits: int = 1, sms: int = DEFAULT_SMS) -> float:
    """MACs the busiest SM issues with ``bm`` x ``bn`` tiles and K in ``splits`` ranges, over
    its relative rate.

    ``q = ceil(tiles / sms)`` blocks (tiles counted per group and split) land on the busiest SM
    (blocks are handed out as SMs free up), each doing ``bm * bn * 8 * steps`` MACs (M, N and K
    tails computed in full: Cog = 3 wastes most of a 64-row tile), at the tile's
    :data:`TILE_EFFICIENCY` and, for a lone block on an SM that could hold more,
    :data:`LONE_BLOCK_RATE`.  Times ``sms`` this is the MAC count a perfectly spread, saturated
    128 x 128 kernel would take as long for.  Pure.
    """
    s = suffix(spec)
    cog = spec.c_out // spec.groups
    N = spec.batch * math.prod(spec.out_shape)
    steps = -(-_steps(spec) // splits)
    tiles = spec.groups * splits * -(-cog // bm) * -(-N // bn)
    q = -(-tiles // sms)
    min_blocks = IGEMM_TILES[(s, bm, bn)][0]
    util = LONE_BLOCK_RATE if (q == 1 and min_blocks > 1) else 1.0
    return q * bm * bn * IGEMM_BK * steps / (TILE_EFFICIENCY[(s, bm, bn)] * util)


def _y_bytes(spec: ConvSpec, nb: int) -> int:
    return nb * spec.c_out * math.prod(spec.out_shape) * spec.dtype.itemsize


def split_options(spec: ConvSpec) -> list[int]:
    """K split counts :func:`run` may use for ``spec``: each split gets at least one K step,
    the partial results of one launch fit :data:`WORKSPACE_BUDGET`, the indices their int."""
    steps = _steps(spec)
    nb = batch_chunk(spec)
    out = [1]
    for s in range(2, MAX_SPLITS + 1):
        per = -(-steps // s)
        if (s - 1) * per >= steps:  # the last split would be empty
            continue
        if s * _y_bytes(spec, nb) > WORKSPACE_BUDGET:
            break
        if spec.groups * s > _INT_MAX or nb * spec.c_out > _INT_MAX:
            break
        out.append(s)
    return out


def plan_seconds(spec: ConvSpec, pl: IgPlan, c: dict[str, float], sms: int = DEFAULT_SMS):
    """Estimated seconds of ``pl`` under the constants ``c`` (see :func:`cost`)."""
    s = suffix(spec)
    macs = tile_model(spec, pl.bm, pl.bn, pl.splits, sms) * sms
    moved = spec.min_bytes
    if spec.flip:  # the reversed copy of w
        moved += 2 * math.prod(spec.w_shape) * spec.dtype.itemsize
    extra = 0.0
    if pl.splits > 1:  # partial results written and read back, one more launch
        moved += 2 * pl.splits * _y_bytes(spec, spec.batch)
        extra = REDUCE_LAUNCH
    chunks = -(-spec.batch // batch_chunk(spec))
    return (
        c["overhead_implicit_gemm"] * chunks
        + extra * chunks
        + macs * c[f"gemm_mac_{s}"] * c["igemm_penalty"]
        + moved * c["stream_byte"]
    )


def plan(
    spec: ConvSpec,
    sms: int = DEFAULT_SMS,
    tile: tuple[int, int] | None = None,
    splits: int | None = None,
) -> IgPlan:
    """The plan :func:`run` uses: the tile (float64 has one; float32 64 x 128 when Cog <= 64,
    a 128-row tile being half empty) and K split count that :func:`plan_seconds` under
    :data:`PLAN_CONSTANTS` finishes first (ties: fewer splits, bigger tiles).  ``tile`` /
    ``splits`` force either.  Pure."""
    tiles = tiles_for(spec)
    if tile is not None:
        igemm_defines(*tile, suffix(spec))  # a ValueError for a tile that is not compiled
        tiles = [tuple(tile)]
    elif spec.c_out // spec.groups <= 64 and (64, 128) in tiles:
        tiles = [(64, 128)]
    counts = split_options(spec) if splits is None else [int(splits)]
    if counts[0] < 1:
        raise ValueError(f"splits must be >= 1, got {splits}")
    if spec.groups * counts[0] > _INT_MAX or batch_chunk(spec) * spec.c_out > _INT_MAX:
        if counts[0] > 1:
            raise ValueError(f"{splits} K splits exceed the kernels' int range for this problem")
    options = [IgPlan(bm, bn, s) for bm, bn in tiles for s in counts]
    return min(
        options,
        key=lambda p: (plan_seconds(spec, p, PLAN_CONSTANTS, sms), p.splits, -p.bm * p.bn),
    )


def choose_tile(spec: ConvSpec, sms: int = DEFAULT_SMS) -> tuple[int, int]:
    """(BM, BN) of :func:`plan`."""
    pl = plan(spec, sms)
    return (pl.bm, pl.bn)


def cost(spec: ConvSpec, c: dict[str, float]) -> float:
    """Estimated seconds of :func:`run` under the constants ``c``: the GEMM's MACs at
    ``gemm_mac_<f32|f64>`` (cuBLAS's rate) times ``igemm_penalty`` (this SIMT kernel against
    cuBLAS) and the plan's waste (:func:`tile_model`: tails, idle SMs, tile efficiency), plus
    reading x and w and writing y once at ``stream_byte`` (w twice more when flipped; split K's
    partial results twice), plus ``overhead_implicit_gemm`` per launch chunk.  inf when
    :func:`supports` declines.  Pure."""
    if supports(spec) is not None:
        return math.inf
    return plan_seconds(spec, plan(spec), c)


def batch_chunk(spec: ConvSpec) -> int:
    """Batch items per launch: their GEMM columns (items * P) stay within :data:`MAX_N`."""
    P = math.prod(spec.out_shape)
    return max(1, min(spec.batch, MAX_N // max(P, 1)))


def launch_config(spec: ConvSpec, nb: int, bm: int, bn: int, splits: int = 1):
    """(grid, block) of ``igemm_*`` for ``nb`` batch items: x over the N tiles, y over the M
    tiles, z over groups * splits (both capped at :data:`_build.GRID_YZ_MAX`, grid-strided beyond)."""
    cog = spec.c_out // spec.groups
    N = nb * math.prod(spec.out_shape)
    grid = (
        max(1, -(-N // bn)),
        max(1, min(-(-cog // bm), _build.GRID_YZ_MAX)),
        max(1, min(spec.groups * splits, _build.GRID_YZ_MAX)),
    )
    return grid, (IGEMM_THREADS, 1, 1)


def reduce_config(spec: ConvSpec, nb: int):
    """(grid, block) of ``igemm_reduce_*``: x over a plane's outputs, y over the nb * c_out
    planes (capped at :data:`_build.GRID_YZ_MAX`, grid-strided beyond)."""
    P = math.prod(spec.out_shape)
    grid = (
        max(1, min(-(-P // IGEMM_THREADS), (1 << 30) // IGEMM_THREADS)),
        max(1, min(nb * spec.c_out, _build.GRID_YZ_MAX)),
        1,
    )
    return grid, (IGEMM_THREADS, 1, 1)


def _pad3(t, fill) -> tuple:
    return (fill,) * (3 - len(t)) + tuple(t)


#: the epilogue arguments of a launch with nothing to fuse: NULL bias, act 0, slope 0
NO_EPILOGUE = (None, np.int32(0), np.float64(0.0))


def kernel_args(spec: ConvSpec, x, w, y, nb: int, splits: int, epi=NO_EPILOGUE) -> tuple:
    """The argument tuple of ``igemm_*``: x, w~, y (the workspace when split), 23 int32
    scalars (geometry with 1-D / 2-D padded to 3-D, then splits), the epilogue's bias, act,
    slope."""
    ints = (
        nb, spec.c_in, spec.c_out, spec.groups,
        *_pad3(spec.in_shape, 1), *_pad3(spec.out_shape, 1), *_pad3(spec.kernel_shape, 1),
        *_pad3(spec.stride, 1), *_pad3(spec.dilation, 1), *_pad3(spec.pad_lo, 0), splits,
    )  # fmt: skip
    return (x, w, y) + tuple(np.int32(v) for v in ints) + tuple(epi)


def reduce_args(spec: ConvSpec, ws, y, nb: int, splits: int, epi) -> tuple:
    """The argument tuple of ``igemm_reduce_*``."""
    P = math.prod(spec.out_shape)
    ints = (splits, nb * spec.c_out, spec.c_out, P)
    return (ws, y) + tuple(np.int32(v) for v in ints) + tuple(epi)


_sms_cache: dict[int, int] = {}


def _sm_count(cp) -> int:
    """SMs of the current device (DEFAULT_SMS when the device does not say)."""
    try:
        dev = cp.cuda.Device()
        n = _sms_cache.get(dev.id)
        if n is None:
            n = _sms_cache[dev.id] = int(dev.attributes["MultiProcessorCount"])
        return n
    except Exception:  # a device object without attributes (tests' fake CuPy)
        return DEFAULT_SMS


def run(
    spec: ConvSpec,
    x,
    w,
    out=None,
    *,
    bias=None,
    act: int = 0,
    slope: float = 0.0,
    tile: tuple[int, int] | None = None,
    splits: int | None = None,
):
    """y of the canonical problem for CuPy arrays ``x``, ``w`` (into ``out`` when given), with
    ``act(y + bias[channel])`` fused into the store when ``bias`` / ``act`` are given.  ``tile``
    (a compiled (BM, BN)) and ``splits`` force the plan's choices (default: :func:`plan` for
    this device)."""
    from gpuconv.cuda.direct import epilogue_args, prepare

    cp, x, w, y = prepare(spec, x, w, out, supports(spec), "the implicit-GEMM kernel")
    epi = epilogue_args(spec, bias, act, slope, cp)
    if spec.flip:  # w~: reversed on every spatial axis, contiguous
        w = cp.ascontiguousarray(
            w[(slice(None), slice(None)) + (slice(None, None, -1),) * spec.ndim]
        )
    pl = plan(spec, _sm_count(cp), tile, splits)
    s = suffix(spec)
    defines = igemm_defines(pl.bm, pl.bn, s)
    kern = _loader.get_function(SOURCE, f"igemm_{s}", defines)
    chunk = batch_chunk(spec)
    ws = None
    if pl.splits > 1:
        reduce = _loader.get_function(SOURCE, f"igemm_reduce_{s}", defines)
        ws = cp.empty(pl.splits * chunk * spec.c_out * math.prod(spec.out_shape), spec.dtype)
    for b0 in range(0, spec.batch, chunk):
        nb = min(chunk, spec.batch - b0)
        whole = nb == spec.batch
        xc = x if whole else x[b0 : b0 + nb]
        yc = y if whole else y[b0 : b0 + nb]
        grid, block = launch_config(spec, nb, pl.bm, pl.bn, pl.splits)
        if pl.splits == 1:
            _loader.launch(kern, grid, block, kernel_args(spec, xc, w, yc, nb, 1, epi))
            continue
        wsc = ws[: pl.splits * nb * spec.c_out * math.prod(spec.out_shape)]
        _loader.launch(kern, grid, block, kernel_args(spec, xc, w, wsc, nb, pl.splits))
        rgrid, rblock = reduce_config(spec, nb)
        _loader.launch(reduce, rgrid, rblock, reduce_args(spec, wsc, yc, nb, pl.splits, epi))
    return y
