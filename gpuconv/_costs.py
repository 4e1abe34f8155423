"""The cost model: pure functions of a :class:`ConvSpec` and one table of fitted constants.

Each estimate is a time in seconds, built from the work an algorithm does (multiply-adds, bytes
moved, FFT butterflies) divided by the rate this machine does that work at.  The rates live in
:data:`CPU_CONSTANTS`, in one place, so a calibration (``gpuconv tune``, a later issue) only has to
replace that table.  Nothing here imports numba or touches data.
"""

from __future__ import annotations

import math
import os
from math import prod

from ._spec import ConvSpec


def scale_key(name: str, ndim: int, precision: str) -> str:
    """The efficiency constant of algorithm ``name`` on ``ndim``-D problems in ``precision``
    ('f32': float32 / complex64, 'f64': everything else).

    >>> scale_key("fft", 2, "f32")
    'scale_fft_2d_f32'
    """
    return f"scale_{name}_{ndim}d_{precision}"


#: the CPU algorithms' registry names (gpuconv.dispatch registers them in this order)
CPU_ALGORITHMS = ("direct", "im2col", "fft", "overlap_add", "separable")

#: The cost model's constants for the CPU algorithms, as `gpuconv tune` fitted them on this
#: project's reference machine (2 cores of an AMD EPYC with AVX-512, 24 GiB, numpy 2.4 / scipy
#: 1.17 / numba 0.68) on 2026-11-23: the rate constants from its measured ceilings
#: (CPU_REFERENCE_RATES), overheads and efficiency scales by least squares over the calibration
#: grid.  Units: seconds per unit of work.  Penalty factors and thresholds are set by hand from
#: the studies in bench/NOTES-*.md.  `gpuconv tune` replaces this table on the user's machine.
CPU_CONSTANTS: dict[str, float] = {
    # direct: seconds per real multiply-add (vectorised, all cores), by element kind
    "direct_mac_f32": 1.0 / 1.019e11,
    "direct_mac_f64": 1.0 / 5.666e10,
    "direct_mac_c64": 4.0 / 1.019e11,
    "direct_mac_c128": 4.0 / 5.666e10,
    "direct_mac_i64": 1.0 / 1.648e10,
    # seconds per (output row, kernel row) pass of the vector loop (bench/NOTES-cpu-direct.md)
    "direct_row_pass": 5e-09,
    # strided / dilated / 3-D problems leave the tuned 2-D path
    "direct_generic_penalty": 1.5,
    # summing over input channels per output channel re-reads the input rows
    "direct_channel_penalty": 6.0,
    # im2col: writing the column matrix (seconds per byte) and the GEMM (seconds per MAC)
    "im2col_byte": 1.0 / 2.174e10,
    "gemm_mac_f32": 1.0 / 1.243e11,
    "gemm_mac_f64": 1.0 / 6.077e10,
    "gemm_mac_i64": 1.0 / 1.545e09,
    # FFT: seconds per real butterfly unit n*log2(n) of one real transform, all cores
    "fft_nlogn_f32": 1.0 / 2.038e10,
    "fft_nlogn_f64": 1.0 / 1.208e10,
    # 1-D transforms longer than fft_1d_long points leave the cache more often than the rows of
    # a 2-D one (overlap-save's short blocks stay in it)
    "fft_1d_penalty": 1.8,
    "fft_1d_long": 65536.0,
    # spectral product: seconds per complex multiply-add
    "spectral_cmac": 1.0 / 6.795e09,
    # streaming a buffer once (pad, copy, slice), seconds per byte
    "stream_byte": 1.0 / 6.115e10,
    # fixed cost of one call of an algorithm (python dispatch, thread start-up)
    "overhead_direct": 18.2e-6,
    "overhead_im2col": 10.9e-6,
    "overhead_fft": 40.0e-6,
    "overhead_overlap_add": 157.3e-6,
    "overhead_separable": 63.6e-6,
    # direct transposed (backward-data gather kernel): no register blocking, phase bookkeeping
    "direct_transposed_penalty": 2.0,
    # col2im: scatter-adding the column matrix costs this many times writing it
    "col2im_scatter_factor": 2.0,
    # each algorithm's efficiency per number of spatial axes and precision: the factor its
    # estimate above (less its overhead) is multiplied by, fitted with the overheads by
    # `gpuconv tune` on the calibration grid (gpuconv._grids.calibration)
    "scale_direct_1d_f32": 1.04,
    "scale_direct_1d_f64": 1.1,
    "scale_direct_2d_f32": 1.02,
    "scale_direct_2d_f64": 1.27,
    "scale_direct_3d_f32": 1.5,
    "scale_direct_3d_f64": 1.6,
    "scale_fft_1d_f32": 2.79,
    "scale_fft_1d_f64": 2.27,
    "scale_fft_2d_f32": 1.59,
    "scale_fft_2d_f64": 1.78,
    "scale_fft_3d_f32": 1.91,
    "scale_fft_3d_f64": 1.76,
    "scale_im2col_1d_f32": 1.1,
    "scale_im2col_1d_f64": 0.986,
    "scale_im2col_2d_f32": 0.998,
    "scale_im2col_2d_f64": 0.804,
    "scale_im2col_3d_f32": 3.77,
    "scale_im2col_3d_f64": 3.02,
    "scale_overlap_add_1d_f32": 1.61,
    "scale_overlap_add_1d_f64": 1.59,
    "scale_overlap_add_2d_f32": 1.55,
    "scale_overlap_add_2d_f64": 1.78,
    "scale_overlap_add_3d_f32": 1.6,
    "scale_overlap_add_3d_f64": 1.6,
    "scale_separable_1d_f32": 1.5,
    "scale_separable_1d_f64": 1.5,
    "scale_separable_2d_f32": 1.32,
    "scale_separable_2d_f64": 1.5,
    "scale_separable_3d_f32": 1.66,
    "scale_separable_3d_f64": 1.66,
    # the backward passes' efficiency relative to the forward fit, per algorithm (their own
    # kernels, remaps and extra passes), fitted by `gpuconv tune` on CNN layers
    "opscale_direct_backward_data": 1.82,
    "opscale_direct_backward_weight": 2.01,
    "opscale_fft_backward_data": 1.41,
    "opscale_fft_backward_weight": 2.17,
    "opscale_im2col_backward_data": 1.47,
    "opscale_im2col_backward_weight": 2.08,
    "opscale_overlap_add_backward_data": 1.0,
    "opscale_overlap_add_backward_weight": 1.0,
    "opscale_separable_backward_data": 1.0,
    "opscale_separable_backward_weight": 1.0,
}

#: what gpuconv._rates.measure read on the machine the table above was fitted on; `gpuconv
#: tune` rescales each rate-like constant by the ratio of its own machine's figure to these
CPU_REFERENCE_RATES: dict[str, float] = {
    "copy_bytes_per_s": 6.115e10,
    "fft_nlogn_per_s_f32": 2.038e10,
    "fft_nlogn_per_s_f64": 1.208e10,
    "gemm_flops_f32": 2.486e11,
    "gemm_flops_f64": 1.215e11,
}


def _sfx(spec: ConvSpec) -> str:
    d = spec.dtype
    if d.kind == "i":
        return "i64"
    bits = d.itemsize * 8
    return f"c{bits}" if d.kind == "c" else f"f{bits}"


def _real_sfx(spec: ConvSpec) -> str:
    """f32 or f64: the precision of a float path (int64 problems run in float64)."""
    return "f32" if spec.dtype.itemsize == 4 or spec.dtype == "complex64" else "f64"


def direct_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    t = spec.macs * c[f"direct_mac_{_sfx(spec)}"]
    tuned = (
        spec.ndim <= 2 and all(s == 1 for s in spec.stride) and all(d == 1 for d in spec.dilation)
    )
    if not tuned:
        t *= c["direct_generic_penalty"]
    if spec.c_in // spec.groups > 1:
        t *= c["direct_channel_penalty"]
    # every (output row, kernel row) pair is one pass of the vector loop: with short rows (3-D
    # volumes, narrow images) their set-up is a cost of its own
    passes = spec.batch * spec.c_out * (spec.c_in // spec.groups)
    passes *= prod(spec.out_shape[:-1]) * prod(spec.kernel_shape[:-1])
    t += passes * c["direct_row_pass"]
    # the sums run while the rows stream in: small kernels are bound by memory, not arithmetic
    return c["overhead_direct"] + max(t, spec.min_bytes * c["stream_byte"])


def im2col_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    cig = spec.c_in // spec.groups
    cols = spec.batch * spec.groups * cig * prod(spec.kernel_shape) * prod(spec.out_shape)
    col_bytes = cols * spec.dtype.itemsize
    sfx = _sfx(spec)
    gemm_key = "gemm_mac_i64" if sfx == "i64" else f"gemm_mac_{_real_sfx(spec)}"
    mac = c[gemm_key] * (4.0 if spec.is_complex else 1.0)
    # a GEMM with few output channels is a matrix-vector product, bound by reading the columns
    gemm = max(spec.macs * mac, col_bytes * c["stream_byte"])
    return c["overhead_im2col"] + col_bytes * c["im2col_byte"] + gemm


def _fft_work(shape: tuple[int, ...]) -> float:
    n = prod(shape)
    return n * math.log2(max(n, 2))


def fft_lengths(spec: ConvSpec) -> tuple[int, ...]:
    """Transform lengths the FFT algorithm will use (its own choice; scipy.fft only, no numba)."""
    from .cpu import fft

    return fft.plan_lengths(spec)


def fft_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    shape = fft_lengths(spec)
    cig = spec.c_in // spec.groups
    cog = spec.c_out // spec.groups
    transforms = spec.batch * spec.c_in + spec.c_out * cig + spec.batch * spec.c_out
    unit = _fft_unit(spec, shape, c)
    n_freq = prod(shape) // (1 if spec.is_complex else 2)
    product = spec.batch * spec.groups * cig * cog * n_freq * c["spectral_cmac"]
    return c["overhead_fft"] + transforms * _fft_work(shape) * unit + product


def _fft_unit(spec: ConvSpec, shape: tuple[int, ...], c: dict[str, float]) -> float:
    """Seconds per n log2 n of one transform of ``shape`` in ``spec``'s precision."""
    unit = c[f"fft_nlogn_{_real_sfx(spec)}"] * (2.0 if spec.is_complex else 1.0)
    if len(shape) == 1 and shape[0] > c["fft_1d_long"]:
        unit *= c["fft_1d_penalty"]
    return unit


def overlap_add_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    from .cpu import overlap_add

    plan = overlap_add._plan(spec, not spec.is_complex)
    blocks = prod(nb for _, _, nb in plan)
    shape = tuple(lb for lb, _, _ in plan)
    cig = spec.c_in // spec.groups
    cog = spec.c_out // spec.groups
    unit = _fft_unit(spec, shape, c)
    transforms = blocks * spec.batch * (spec.c_in + spec.c_out) + spec.c_out * cig
    n_freq = prod(shape) // (1 if spec.is_complex else 2)
    product = blocks * spec.batch * spec.groups * cig * cog * n_freq * c["spectral_cmac"]
    # gathering the overlapping input blocks, and the blocks' spectra and results, go through
    # memory once each way: unlike one big transform, this traffic grows with the overlap
    block_elems = blocks * prod(shape) * spec.batch * (spec.c_in + spec.c_out)
    traffic = 4 * block_elems * spec.dtype.itemsize * c["stream_byte"]
    return c["overhead_overlap_add"] + transforms * _fft_work(shape) * unit + product + traffic


def separable_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    mac = c[f"direct_mac_{_sfx(spec)}"]
    passes = spec.ndim
    work = 0.0
    shape = list(spec.padded_shape)
    for ax in range(spec.ndim):
        shape[ax] = spec.out_shape[ax]
        work += prod(shape) * spec.kernel_shape[ax]
    total = work * spec.batch * spec.c_out * (spec.c_in // spec.groups)
    return c["overhead_separable"] + total * mac + passes * spec.min_bytes * c["stream_byte"]


def narrow_output_penalty(spec: ConvSpec) -> float:
    """How much slower the direct core runs when output rows are narrower than a vector.

    It vectorises along the last output axis (64-byte vectors); the backward-weight remap has the
    kernel's size as its output, e.g. rows of 3.
    """
    lanes = 64 // spec.dtype.itemsize
    return max(1.0, lanes / spec.out_shape[-1])


def direct_transposed_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    """backward_data by the gather-form transposed direct kernel (gpuconv.cpu.direct_transposed)."""
    t = spec.macs * c[f"direct_mac_{_sfx(spec)}"] * c["direct_transposed_penalty"]
    if spec.c_out // spec.groups > 1:
        t *= c["direct_channel_penalty"]
    lanes = 64 // spec.dtype.itemsize
    t *= max(1.0, lanes / max(1, spec.in_shape[-1] // spec.stride[-1]))
    return c["overhead_direct"] + t + spec.min_bytes * c["stream_byte"]


def depthwise_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    """The direct algorithm's depthwise fast path (forward and backward_weight): one multiply-add
    per tap and output at the vector rate, plus one stream of x and y."""
    t = spec.macs * c[f"direct_mac_{_sfx(spec)}"]
    if any(s > 1 for s in spec.stride):
        t *= c["direct_generic_penalty"]
    return c["overhead_direct"] + t + spec.min_bytes * c["stream_byte"]


def col2im_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    """backward_data by im2col's transposed GEMM and col2im scatter-add."""
    cols = spec.batch * spec.c_in * prod(spec.kernel_shape) * prod(spec.out_shape)
    col_bytes = cols * spec.dtype.itemsize
    return im2col_cost(spec, c) + col_bytes * c["im2col_byte"] * (c["col2im_scatter_factor"] - 1)


def im2col_weight_cost(spec: ConvSpec, c: dict[str, float]) -> float:
    """backward_weight by im2col: the same column matrix, contracted with dy instead of w."""
    return im2col_cost(spec, c) + prod(spec.y_shape) * spec.dtype.itemsize * c["stream_byte"]


def cpu_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
