"""Separable (rank-1) convolution on the GPU: one 1-D pass per spatial axis (kernels_cuda/separable.cu).

The GPU twin of :mod:`gpuconv.cpu.separable`, with its semantics: every ``(o, c)`` kernel slice
must be an outer product of 1-D factors (to rounding; :func:`supports_kernel` says, the factors
are found on the host by :func:`gpuconv.cpu.separable.kernel_factors` after copying ``w`` there),
float32 / float64 / complex64 / complex128 only, two or more spatial axes (any number), channels
as ``c_out * Cig`` separable convolutions.  For each input channel ``c < Cig`` one pass per axis,
in the CPU algorithm's order (fewest MACs), over all ``batch * c_out`` planes at once; the first
pass reads the planes' input channels straight from ``x``, the last one accumulates into ``y``
(overwriting it for ``c == 0``).  So ``ndim * Cig`` launches of ``sep_pass_<dtype>``; the
intermediates live in two ping-pong buffers allocated with CuPy.

``run(..., bias=, act=, slope=)`` fuses ``act(y + bias[channel])`` (gpuconv/_epilogue.py's codes;
no activation for complex results) into the very last launch, after the last accumulation.
``run`` takes CuPy arrays (``x``, ``w`` of ``spec``'s shapes) and returns a CuPy array (``out`` when
given) written on the current stream; the host copy of ``w`` for the factorisation synchronises.
"""

from __future__ import annotations

import math

import numpy as np

from gpuconv import _arrays
from gpuconv._spec import ConvSpec
from gpuconv.cpu import separable as _cpu
from gpuconv.cuda import _build, _loader
from gpuconv.cuda.direct import epilogue_args, prepare

SOURCE = "separable.cu"
#: run() applies bias and activation in the last pass's store (gpuconv.dispatch passes them)
FUSED_EPILOGUE = True

#: elements of one (intermediate) plane must stay under this: 32-bit in-plane offsets.
MAX_PLANE = 1 << 30
_INT_MAX = 2**31 - 1
_MAX_GRID_X = 2**31 - 1
_MAX_GRID_Y = 65535


def suffix(spec: ConvSpec) -> str:
    return _build.DTYPE_SUFFIX[spec.dtype.name]


def _pass_shapes(spec: ConvSpec):
    """``[(axis, shape before, shape after)]`` of the passes, in the CPU algorithm's order."""
    shape = list(spec.in_shape)
    out = []
    for a in _cpu._pass_order(spec):
        before = tuple(shape)
        shape[a] = spec.out_shape[a]
        out.append((a, before, tuple(shape)))
    return out


def supports(spec: ConvSpec) -> str | None:
    """None if the shapes suit (the kernel's rank is :func:`supports_kernel`'s to check)."""
    reason = _cpu.supports(spec)
    if reason is not None:
        return reason
    largest = math.prod(max(n, o) for n, o in zip(spec.in_shape, spec.out_shape))
    if largest >= MAX_PLANE:
        return f"separable: a plane of up to {largest} elements (limit {MAX_PLANE})"
    if spec.batch * spec.c_out > _INT_MAX or spec.batch * spec.c_in > _INT_MAX:
        return "separable: batch * channels exceeds 2**31 - 1"
    tile = _build.SEP_BLOCK * max(_build.SEP_OPT, _build.SEP_OPT_16)
    for a in range(spec.ndim):
        reach = spec.reach[a]
        far = (spec.out_shape[a] + tile) * spec.stride[a] + reach + spec.pad_lo[a]
        if far >= _INT_MAX or spec.padded_shape[a] >= _INT_MAX:
            return (
                f"separable: axis {a}'s stride, dilation or padding exceeds the kernel's 32-bit "
                "index range"
            )
    return None


def supports_kernel(spec: ConvSpec, w) -> str | None:
    """None if every ``(o, c)`` slice of ``w`` (NumPy or CuPy) is rank 1 to rounding, else why.

    A CuPy ``w`` is copied to the host (small) and factored there.
    """
    return _cpu.supports_kernel(spec, np.asarray(_arrays.to_host(w)))


def _device_factors(spec: ConvSpec, w, factors, cp):
    """Per axis a device array ``(Cig, c_out, k_a)`` of the correlation kernel's factors, so that
    ``[c]`` is the contiguous ``(c_out, k_a)`` filter block of input channel ``c``."""
    if factors is None:
        factors = _cpu.kernel_factors(spec, np.asarray(_arrays.to_host(w)))
    if len(factors) != spec.ndim:
        raise ValueError(f"factors: {len(factors)} arrays for {spec.ndim} spatial axes")
    cig = spec.c_in // spec.groups
    out = []
    for a, f in enumerate(factors):
        f = np.asarray(_arrays.to_host(f))
        want = (spec.c_out, cig, spec.kernel_shape[a])
        if f.shape != want:
            raise ValueError(f"factors[{a}] has shape {f.shape}, expected {want}")
        host = np.ascontiguousarray(f.transpose(1, 0, 2), dtype=spec.dtype)
        out.append(cp.ascontiguousarray(cp.asarray(host, dtype=spec.dtype)))
    return out


def outputs_per_thread(itemsize: int) -> int:
    """Outputs per thread of ``sep_pass_*`` for elements of ``itemsize`` bytes."""
    return _build.SEP_OPT_16 if itemsize >= 16 else _build.SEP_OPT


def staged_fits(tpr: int, k: int, stride: int, dilation: int, itemsize: int) -> bool:
    """Whether the last-axis path stages its rows in shared memory (the kernel's own test)."""
    rows = _build.SEP_BLOCK // tpr
    span = (tpr * outputs_per_thread(itemsize) - 1) * stride + (k - 1) * dilation + 1
    return rows * span <= _build.SEP_SMEM_BYTES // itemsize


def last_axis_tpr(n_out: int, k: int, stride: int, dilation: int, itemsize: int) -> int:
    """Threads per row of the last-axis path: just enough for a row of ``n_out`` outputs (short
    rows pack several to a block), or a whole block when only that fits the shared buffer (wider
    tiles share more of the halo); without any fit the kernel reads global memory."""
    tpr = max(1, min(_build.SEP_BLOCK, -(-n_out // outputs_per_thread(itemsize))))
    if not staged_fits(tpr, k, stride, dilation, itemsize) and staged_fits(
        _build.SEP_BLOCK, k, stride, dilation, itemsize
    ):
        return _build.SEP_BLOCK
    return tpr


def flat_grid(blocks: int) -> tuple[int, int, int]:
    """A grid of at least ``blocks`` blocks (the kernel's flat block index; extra blocks exit)."""
    blocks = max(1, blocks)
    gx = min(blocks, _MAX_GRID_X)
    gy = -(-blocks // gx)
    if gy > _MAX_GRID_Y:
        raise ValueError(f"{blocks} blocks exceed the grid")
    return (gx, gy, 1)


def pass_blocks(planes: int, pre: int, n_out: int, inner: int, tpr: int, itemsize: int) -> int:
    """Blocks of work of one ``sep_pass_*`` launch (see kernels_cuda/separable.cu)."""
    opt = outputs_per_thread(itemsize)
    if inner == 1:
        tiles = -(-n_out // (tpr * opt))
        groups = -(-(planes * pre) // (_build.SEP_BLOCK // tpr))
        return groups * tiles
    items = pre * -(-n_out // opt) * inner
    return planes * -(-items // _build.SEP_BLOCK)


def run(spec: ConvSpec, x, w, out=None, *, factors=None, bias=None, act: int = 0, slope=0.0):
    """y of the canonical problem for CuPy arrays ``x``, ``w`` (into ``out`` when given), with
    ``act(y + bias)`` fused into the last pass.

    ``factors`` (optional): :func:`gpuconv.cpu.separable.kernel_factors` of ``w`` (per axis a
    ``(c_out, Cig, k_a)`` array), to skip the host SVDs.  Raises ValueError for a kernel slice
    that is not rank 1.
    """
    cp, x, w, y = prepare(spec, x, w, out, supports(spec), "the GPU separable kernels")
    epi = epilogue_args(spec, bias, act, slope, cp)
    no_epi = (np.int32(spec.c_out), None, np.int32(0), np.float64(0.0))
    facs = _device_factors(spec, w, factors, cp)

    sfx = suffix(spec)
    kern = _loader.get_function(SOURCE, f"sep_pass_{sfx}", _build.separable_defines())
    g = spec.groups
    cig, cog = spec.c_in // g, spec.c_out // g
    planes = spec.batch * spec.c_out
    passes = _pass_shapes(spec)
    # ping-pong intermediates: pass i (i < ndim - 1) writes buffer i % 2
    sizes = [0, 0]
    for i, (_, _, after) in enumerate(passes[:-1]):
        sizes[i % 2] = max(sizes[i % 2], planes * math.prod(after))
    bufs = [cp.empty(n, dtype=spec.dtype) if n else None for n in sizes]
    y_flat = y.reshape(-1)
    x_flat = x.reshape(-1)
    itemsize = spec.dtype.itemsize
    for c in range(cig):
        cur = x_flat
        for i, (a, before, after) in enumerate(passes):
            last = i == len(passes) - 1
            dst = y_flat if last else bufs[i % 2][: planes * math.prod(after)]
            if i == 0:  # plane n*c_out + o reads channel (o // Cog) * Cig + c of image n
                src = (spec.c_out, cog, spec.c_in, cig, c)
            else:
                src = (1, 1, 1, 0, 0)
            pre = math.prod(before[:a])
            inner = math.prod(before[a + 1 :])
            n_in, n_out = before[a], after[a]
            k, s, d = spec.kernel_shape[a], spec.stride[a], spec.dilation[a]
            tpr = last_axis_tpr(n_out, k, s, d, itemsize) if inner == 1 else 1
            grid = flat_grid(pass_blocks(planes, pre, n_out, inner, tpr, itemsize))
            args = (
                cur, facs[a][c], dst, np.int64(planes), *(np.int32(v) for v in src),
                np.int32(pre), np.int32(n_in), np.int32(n_out), np.int32(inner), np.int32(k),
                np.int32(s), np.int32(d), np.int32(spec.pad_lo[a]), np.int32(spec.c_out),
                np.int32(tpr), np.int32(last and c > 0),
                # the epilogue rides on the very last launch, after the last accumulation
                *((np.int32(spec.c_out), *epi) if last and c == cig - 1 else no_epi),
            )  # fmt: skip
            _loader.launch(kern, grid, (_build.SEP_BLOCK, 1, 1), args)
            cur = dst
    return y


def cost(spec: ConvSpec, c: dict[str, float]) -> float:
    """Estimated seconds of :func:`run` on ``spec`` under the CUDA cost constants ``c``.

    Every pass streams its input and output planes once per input channel (the last pass of
    ``c > 0`` also reads ``y``), does ``k_a`` MACs per output at the direct kernels' rate, and is
    one launch; the host factors ``c_out * Cig`` kernel slices (SVDs) first.  Constants:
    ``overhead_separable``, ``separable_launch``, ``separable_factor_slice``,
    ``direct_mac_<dtype>``, ``stream_byte``.
    """
    cig = spec.c_in // spec.groups
    planes = spec.batch * spec.c_out
    macs = 0
    elems = 0
    for a, before, after in _pass_shapes(spec):
        n_after = math.prod(after)
        macs += n_after * spec.kernel_shape[a]
        elems += math.prod(before) + n_after
    elems = planes * (cig * elems + (cig - 1) * math.prod(spec.out_shape))
    sfx = _build.DTYPE_SUFFIX[spec.dtype.name]
    return (
        c["overhead_separable"]
        + spec.ndim * cig * c["separable_launch"]
        + spec.c_out * cig * c["separable_factor_slice"]
        + planes * cig * macs * c[f"direct_mac_{sfx}"]
        + elems * spec.dtype.itemsize * c["stream_byte"]
    )
