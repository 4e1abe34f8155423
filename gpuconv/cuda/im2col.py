"""im2col + GEMM on the GPU: kernels_cuda/im2col.cu builds the column matrix, cuBLAS multiplies.

For a chunk of ``nb`` batch items, ``im2col_<dtype>`` writes ``col`` of shape
``(nb, groups, Cig*K, P)`` (K taps, P outputs per plane; zero padding read at load time), and one
batched ``cupy.matmul`` of the correlation kernel ``W~ (groups, Cog, Cig*K)`` with it gives
``(nb, groups, Cog, P)``, which is y's own layout for those items.  A 1 x ... x 1 kernel with
stride 1 and no padding skips im2col (``col`` is ``x`` itself).  The batch is chunked so that
``col`` stays under :data:`WORKSPACE_BUDGET` (at least one item per chunk, whatever its size).

float32 / float64 / complex64 / complex128 multiply through cuBLAS (CuPy uses TF32 for float32 only
when ``CUPY_TF32=1`` is set: left off, results are plain float32 GEMM); int64 through CuPy's own
integer matmul (exact, wrapping like NumPy; not cuBLAS).

:func:`col2im` (the adjoint: sums columns back onto the input grid) is here for backward-data
passes.  ``run(spec, x, w, out=None)`` takes CuPy arrays of ``spec.dtype``, returns a CuPy array;
:func:`run_backward_data` (GEMM into columns, then col2im) and :func:`run_backward_weight`
(im2col, then a GEMM with dy) are the two gradients.
"""

from __future__ import annotations

import math

import numpy as np

from gpuconv._spec import ConvSpec
from gpuconv.cuda import _build, _loader

SOURCE = "im2col.cu"
#: bytes of column matrix a call keeps alive at once (one batch chunk), roughly.
WORKSPACE_BUDGET: int = 1 << 30
MAX_PLANE = 1 << 30
_INT_MAX = 2**31 - 1


def supports(spec: ConvSpec) -> str | None:
    """None when the kernels' index ranges hold, else why not."""
    if spec.ndim > 3:
        return f"{spec.ndim} spatial axes; the im2col kernel handles 1 to 3"
    P = math.prod(spec.out_shape)
    if P > MAX_PLANE or math.prod(spec.in_shape) > MAX_PLANE:
        return "a plane has 2**30 or more elements"
    big = (
        *spec.in_shape, *spec.pad_lo, *spec.pad_hi, *spec.reach,
        *(s * o for s, o in zip(spec.stride, spec.out_shape)),
    )  # fmt: skip
    if max(big) > _INT_MAX // 2:
        return "a spatial size or padding exceeds the kernel's 32-bit index range"
    if math.prod(spec.kernel_shape) * (spec.c_in // spec.groups) > _INT_MAX:
        return "the GEMM's inner dimension exceeds 2**31 - 1"
    return None


def _pad3(t, fill):
    return (fill,) * (3 - len(t)) + tuple(t)


def geometry_args(spec: ConvSpec) -> tuple:
    """The 18 int32 geometry arguments shared by im2col / col2im (D..OW, kd.., sd.., dd.., pd..)."""
    vals = (
        *_pad3(spec.in_shape, 1), *_pad3(spec.out_shape, 1), *_pad3(spec.kernel_shape, 1),
        *_pad3(spec.stride, 1), *_pad3(spec.dilation, 1), *_pad3(spec.pad_lo, 0),
    )  # fmt: skip
    return tuple(np.int32(v) for v in vals)


def im2col_launch(rows: int, P: int):
    b = _build.IM2COL_BLOCK
    return (max(1, min(-(-P // b), (1 << 30) // b)), max(1, min(rows, _build.GRID_YZ_MAX)), 1), (
        b,
        1,
        1,
    )


def col2im_launch(planes: int, n_in: int):
    b = _build.IM2COL_BLOCK
    return (
        max(1, min(-(-n_in // b), (1 << 30) // b)),
        max(1, min(planes, _build.GRID_YZ_MAX)),
        1,
    ), (b, 1, 1)


def batch_chunk(spec: ConvSpec, budget: int | None = None) -> int:
    budget = WORKSPACE_BUDGET if budget is None else budget
    per_item = (
        spec.c_in * math.prod(spec.kernel_shape) * math.prod(spec.out_shape) * spec.dtype.itemsize
    )
    return max(1, min(spec.batch, budget // max(per_item, 1)))


def is_pointwise(spec: ConvSpec) -> bool:
    """A kernel of one tap, stride 1, no padding: the column matrix is x itself."""
    return (
        math.prod(spec.kernel_shape) == 1
        and all(s == 1 for s in spec.stride)
        and not any(spec.pad_lo)
        and not any(spec.pad_hi)
    )


def _kernel(name: str, spec: ConvSpec):
    s = _build.DTYPE_SUFFIX[spec.dtype.name]
    return _loader.get_function(SOURCE, f"{name}_{s}", _build.im2col_defines())


def im2col(spec: ConvSpec, x, col=None):
    """The column matrix (nb, c_in, K, P) of the CuPy batch chunk ``x`` (nb, c_in, *in_shape)."""
    from gpuconv._arrays import require_cupy

    cp = require_cupy()
    nb = x.shape[0]
    K = math.prod(spec.kernel_shape)
    P = math.prod(spec.out_shape)
    shape = (nb, spec.c_in, K, P)
    if col is None:
        col = cp.empty(shape, dtype=spec.dtype)
    elif tuple(col.shape) != shape or col.dtype != spec.dtype or not col.flags.c_contiguous:
        raise ValueError(f"col must be a C-contiguous {spec.dtype} array of shape {shape}")
    rows = nb * spec.c_in * K
    grid, block = im2col_launch(rows, P)
    args = (x, col, np.int64(rows)) + geometry_args(spec)
    _loader.launch(_kernel("im2col", spec), grid, block, args)
    return col


def col2im(spec: ConvSpec, col, out=None):
    """The adjoint of :func:`im2col`: ``col`` (nb, c_in, K, P) summed back to (nb, c_in, *in_shape)."""
    from gpuconv._arrays import require_cupy

    cp = require_cupy()
    col = cp.ascontiguousarray(col)
    nb = col.shape[0]
    shape = (nb, spec.c_in) + spec.in_shape
    if out is None:
        out = cp.empty(shape, dtype=spec.dtype)
    elif tuple(out.shape) != shape or out.dtype != spec.dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {spec.dtype} array of shape {shape}")
    planes = nb * spec.c_in
    grid, block = col2im_launch(planes, math.prod(spec.in_shape))
    args = (col, out, np.int64(planes)) + geometry_args(spec)
    _loader.launch(_kernel("col2im", spec), grid, block, args)
    return out


def supports_backward_data(spec: ConvSpec) -> str | None:
    """None when :func:`run_backward_data` (GEMM into columns, col2im) handles ``spec``."""
    return supports(spec)


def supports_backward_weight(spec: ConvSpec) -> str | None:
    """None when :func:`run_backward_weight` (im2col, GEMM with dy) handles ``spec``."""
    return supports(spec)


def _gradient_operands(spec: ConvSpec, op: str, a, b):
    """``(cupy, a, b)``: the two operands of a backward ``op`` as contiguous CuPy arrays of the
    problem's dtype, their shapes checked (dy and w, or x and dy)."""
    reason = supports(spec)
    if reason is not None:
        raise ValueError(f"the GPU im2col path cannot do {op} of this problem: {reason}")
    from gpuconv._arrays import require_cupy

    cp = require_cupy()
    named = {
        "backward_data": (("dy", spec.y_shape), ("w", spec.w_shape)),
        "backward_weight": (("x", spec.x_shape), ("dy", spec.y_shape)),
    }[op]
    out = []
    for v, (name, shape) in zip((a, b), named):
        v = cp.ascontiguousarray(cp.asarray(v, dtype=spec.dtype))
        if tuple(v.shape) != tuple(shape):
            raise ValueError(f"{name} has shape {tuple(v.shape)}; the problem needs {shape}")
        out.append(v)
    return (cp, *out)


def _gemm_dims(spec: ConvSpec) -> tuple[int, int, int, int, int]:
    """``(groups, Cig, Cog, K taps, P outputs)`` of the per-group GEMMs."""
    g = spec.groups
    return (
        g,
        spec.c_in // g,
        spec.c_out // g,
        math.prod(spec.kernel_shape),
        math.prod(spec.out_shape),
    )


def _column_chunks(spec: ConvSpec, x, cp):
    """``(first item, items, columns (nb, g, Cig*K, P))`` per batch chunk of the CuPy ``x``; the
    columns of a pointwise problem are x itself, the others reuse one buffer."""
    g, cig, _, K, P = _gemm_dims(spec)
    pointwise = is_pointwise(spec)
    col = None
    bc = batch_chunk(spec)
    for b0 in range(0, spec.batch, bc):
        xb = x[b0 : b0 + bc]
        nb = xb.shape[0]
        if pointwise:
            yield b0, nb, xb.reshape(nb, g, cig, P)
            continue
        if col is None or col.shape[0] != nb:
            col = cp.empty((nb, spec.c_in, K, P), dtype=spec.dtype)
        yield b0, nb, im2col(spec, xb, col).reshape(nb, g, cig * K, P)


def run_backward_data(spec: ConvSpec, dy, w):
    """``dx`` (the gradient of the input) of ``spec`` from CuPy ``dy`` and ``w``.

    Per batch chunk one batched GEMM ``W~_g^T @ dy_g`` gives the columns (Cig*K, P) of every
    (item, group), and ``col2im`` gathers them onto the input grid; no zero-inserted ``dy`` is
    built, whatever the stride.
    """
    cp, dy, w = _gradient_operands(spec, "backward_data", dy, w)
    g, cig, cog, K, P = _gemm_dims(spec)
    wt = spec.kernel_for_correlation(w).reshape(1, g, cog, cig * K)
    wtt = cp.ascontiguousarray(wt.swapaxes(-1, -2))  # (1, g, Cig*K, Cog)
    dx = cp.empty(spec.x_shape, dtype=spec.dtype)
    pointwise = is_pointwise(spec)
    bc = batch_chunk(spec)
    for b0 in range(0, spec.batch, bc):
        dyb = dy[b0 : b0 + bc]
        nb = dyb.shape[0]
        col = cp.matmul(wtt, dyb.reshape(nb, g, cog, P))  # (nb, g, Cig*K, P)
        if pointwise:  # the columns are dx itself
            dx[b0 : b0 + nb] = col.reshape((nb, spec.c_in) + spec.in_shape)
        else:
            col2im(spec, cp.ascontiguousarray(col).reshape(nb, spec.c_in, K, P), dx[b0 : b0 + nb])
    return dx


def run_backward_weight(spec: ConvSpec, x, dy):
    """``dw`` (the gradient of the weight, shaped like w) of ``spec`` from CuPy ``x`` and ``dy``.

    Per batch chunk the column matrix of x (as :func:`run` builds it) is contracted with dy
    over the output positions by one batched GEMM, and the chunks' (Cog, Cig*K) products are
    summed; the correlation kernel's gradient is flipped back for a convolution.
    """
    cp, x, dy = _gradient_operands(spec, "backward_weight", x, dy)
    g, cig, cog, K, P = _gemm_dims(spec)
    acc = None
    for b0, nb, cb in _column_chunks(spec, x, cp):
        part = cp.matmul(dy[b0 : b0 + nb].reshape(nb, g, cog, P), cb.swapaxes(-1, -2)).sum(axis=0)
        acc = part if acc is None else acc + part
    dw = acc.reshape(spec.w_shape)  # (g, Cog, Cig*K) -> (c_out, Cig, *k)
    if spec.flip:
        dw = dw[(slice(None), slice(None)) + (slice(None, None, -1),) * spec.ndim]
    return cp.ascontiguousarray(dw)


def run(spec: ConvSpec, x, w, out=None):
    """y of the canonical problem for CuPy arrays ``x``, ``w`` (into ``out`` when given)."""
    from gpuconv.cuda.direct import _check_out, prepare

    what = "the GPU im2col path"
    cp, x, w, y = prepare(spec, x, w, out, supports(spec), what, allocate=False)
    g, cig, cog, K, P = _gemm_dims(spec)
    wt = cp.ascontiguousarray(spec.kernel_for_correlation(w)).reshape(1, g, cog, cig * K)
    for b0, nb, cb in _column_chunks(spec, x, cp):
        yb = cp.matmul(wt, cb).reshape((nb, spec.c_out) + spec.out_shape)  # (nb, g, cog, P)
        if y is None and nb == spec.batch:
            return cp.ascontiguousarray(yb, dtype=spec.dtype)  # one chunk: no extra copy
        if y is None:
            y = _check_out(spec, None, cp)
        y[b0 : b0 + nb] = yb
    return y
