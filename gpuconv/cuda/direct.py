"""Direct (spatial-domain) correlation on the GPU: kernels_cuda/direct.cu through CuPy.

The kernels:

* ``direct2d_<dtype>`` (fast 2-D path): 2-D problems with stride 1, dilation 1, a square k x k
  kernel with k in ``_build.FAST2D_SIZES``, and one input channel per output channel (a single
  channel, or depthwise: ``groups == c_in == c_out``).  Every (n, c) plane is one ``blockIdx.z``
  item (grid-strided past 65535).  One shared filter (single channel) goes to the module's
  ``__constant__ c_filter`` (the ``w`` argument is then NULL); depthwise filters go through the
  pointer argument (plane p uses filter ``p % channels``).  The host flips the filter for
  convolution, so the kernel always correlates.
* ``direct3d_generic_<dtype>`` (everything else with 1-3 spatial axes): stride, dilation, padding,
  groups, batch, channels, flip; one thread per output.
* ``direct1d_<dtype>`` (kernels_cuda/direct1d.cu, fast 1-D path): 1-D problems with stride 1,
  dilation 1, one input channel per output channel and at most a tile's halo of taps (2049; 1025
  for complex128); the input tile in shared memory, OPT consecutive outputs per thread.
* ``direct3d_fast_<dtype>`` (kernels_cuda/direct3d.cu, fast 3-D path): 3-D problems with stride
  1, dilation 1, one input channel per output channel and kernel extents up to 9 (7 for 8-byte,
  5 for 16-byte dtypes); an input brick in shared memory, 4 (f32) outputs along z per thread.
* ``direct3d_transposed_<dtype>``: the backward-data pass (:func:`run_backward_data`) in gather
  form, any stride, one thread per input-gradient element (stride-1 passes go through the
  dispatcher's remap onto a forward problem instead, which can take the fast 2-D path).

Both read the zero padding at load time (no padded copy) and sum int64 exactly (wrapping like
NumPy), and both fuse the epilogue into their store: ``act(y + bias[channel])`` (codes of
:mod:`gpuconv._epilogue`), so a layer's bias and activation cost no extra pass over y.
``run(spec, x, w, out=None, *, bias=None, act=0, slope=0.0)`` takes CuPy arrays of
``spec.dtype`` and returns a CuPy array (``out`` when given) written on the current stream.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from gpuconv._spec import ConvSpec
from gpuconv.cuda import _build, _loader

SOURCE = "direct.cu"
#: run() applies bias and activation in the kernels' store (gpuconv.dispatch passes them)
FUSED_EPILOGUE = True
#: the kernels' last three arguments when there is nothing to fuse: NULL bias, act 0, slope 0
NO_EPILOGUE = (None, np.int32(0), np.float64(0.0))
#: grid.x of the generic kernel is capped so that ``s + gridDim.x * blockDim.x`` stays in int32.
_GENERIC_MAX_GRID_X = (1 << 30) // _build.GENERIC_BLOCK
#: outputs (or input elements) of one plane must stay under this (32-bit in-plane indices).
MAX_PLANE = 1 << 30
_INT_MAX = 2**31 - 1


def suffix(spec: ConvSpec) -> str:
    return _build.DTYPE_SUFFIX[spec.dtype.name]


def supports(spec: ConvSpec) -> str | None:
    """None when one of the two kernels solves ``spec``, else why not."""
    if spec.ndim > 3:
        return f"{spec.ndim} spatial axes; the GPU direct kernels handle 1 to 3"
    if spec.dtype.name not in _build.DTYPE_SUFFIX:
        return f"dtype {spec.dtype} has no GPU kernel"
    if math.prod(spec.out_shape) > MAX_PLANE:
        return f"{math.prod(spec.out_shape)} outputs per plane (limit {MAX_PLANE})"
    if spec.batch * spec.c_out > _INT_MAX or spec.batch * spec.c_in > _INT_MAX:
        return "batch * channels exceeds 2**31 - 1"
    big = (
        *spec.in_shape, *spec.out_shape, *spec.pad_lo, *spec.pad_hi,
        *(s * o for s, o in zip(spec.stride, spec.out_shape)), *spec.reach,
    )  # fmt: skip
    if max(big) > _INT_MAX // 2:
        return "a spatial size or padding exceeds the kernels' 32-bit index range"
    return None


def fast2d_reason(spec: ConvSpec) -> str | None:
    """None when the fast 2-D kernel applies to ``spec``, else why not (used for the choice)."""
    if spec.ndim != 2:
        return "not 2-D"
    if spec.stride != (1, 1) or spec.dilation != (1, 1):
        return "stride or dilation is not 1"
    kh, kw = spec.kernel_shape
    if _build.fast2d_variant(kh, kw) is None:
        return f"no compiled {kh}x{kw} variant (sizes {_build.FAST2D_SIZES})"
    if spec.c_in // spec.groups != 1 or spec.c_out // spec.groups != 1:
        return "not single-channel or depthwise (needs c_in == c_out == groups)"
    oh, ow = spec.out_shape
    if -(-oh // _build.TILE_H) > 65535:
        return f"{oh} output rows exceed grid.y * TILE_H"
    h, w = spec.in_shape
    if h * w > MAX_PLANE:
        return "plane too large"
    return None


def fast1d_reason(spec: ConvSpec) -> str | None:
    """None when the fast 1-D kernel (kernels_cuda/direct1d.cu) applies to ``spec``, else why not."""
    if spec.ndim != 1:
        return "not 1-D"
    if spec.stride != (1,) or spec.dilation != (1,):
        return "stride or dilation is not 1"
    if spec.c_in // spec.groups != 1 or spec.c_out // spec.groups != 1:
        return "not single-channel or depthwise (needs c_in == c_out == groups)"
    halo = _build.fast1d_max_halo(suffix(spec))
    if spec.kernel_shape[0] - 1 > halo:
        return f"a {spec.kernel_shape[0]}-tap filter exceeds the tile's halo ({halo + 1} taps)"
    return None


def fast3d_reason(spec: ConvSpec) -> str | None:
    """None when the fast 3-D kernel (kernels_cuda/direct3d.cu) applies to ``spec``, else why not."""
    if spec.ndim != 3:
        return "not 3-D"
    if spec.stride != (1, 1, 1) or spec.dilation != (1, 1, 1):
        return "stride or dilation is not 1"
    if spec.c_in // spec.groups != 1 or spec.c_out // spec.groups != 1:
        return "not single-channel or depthwise (needs c_in == c_out == groups)"
    halo = _build.fast3d_max_halo(suffix(spec))
    if max(spec.kernel_shape) - 1 > halo:
        return f"a {spec.kernel_shape} kernel exceeds the brick's halo ({halo + 1} per axis)"
    if math.prod(spec.in_shape) > MAX_PLANE:
        return "volume too large"
    return None


def _check_out(spec: ConvSpec, out, cp):
    if out is None:
        return cp.empty(spec.y_shape, dtype=spec.dtype)
    if not isinstance(out, cp.ndarray):
        raise TypeError(
            f"out must be a CuPy array, got {type(out).__module__}.{type(out).__name__}"
        )
    if tuple(out.shape) != spec.y_shape or out.dtype != spec.dtype:
        raise ValueError(
            f"out has shape {tuple(out.shape)} and dtype {out.dtype}; the problem needs "
            f"{spec.y_shape} and {spec.dtype}"
        )
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    return out


def _inputs(spec: ConvSpec, x, w, cp):
    if tuple(x.shape) != spec.x_shape or tuple(w.shape) != spec.w_shape:
        raise ValueError(
            f"x {tuple(x.shape)} / w {tuple(w.shape)} do not match {spec.x_shape} / {spec.w_shape}"
        )
    x = cp.ascontiguousarray(cp.asarray(x, dtype=spec.dtype))
    w = cp.ascontiguousarray(cp.asarray(w, dtype=spec.dtype))
    return x, w


def prepare(spec: ConvSpec, x, w, out, reason: str | None, what: str, allocate: bool = True):
    """``(cupy, x, w, y)`` at the start of a GPU algorithm's ``run``: ``reason`` (its
    ``supports(spec)``) raised as a ValueError naming ``what``; ``x``, ``w`` as contiguous CuPy
    arrays of the problem's dtype and shapes; ``y`` the checked ``out``, else a new array (None
    when not ``allocate``)."""
    if reason is not None:
        raise ValueError(f"{what} cannot solve this problem: {reason}")
    from gpuconv._arrays import require_cupy

    cp = require_cupy()
    x, w = _inputs(spec, x, w, cp)
    y = _check_out(spec, out, cp) if out is not None or allocate else None
    return cp, x, w, y


def epilogue_args(spec: ConvSpec, bias, act: int, slope: float, cp) -> tuple:
    """``(bias pointer or None, int32 act, float64 slope)``: the last three arguments of every
    kernel that fuses the epilogue (codes of :mod:`gpuconv._epilogue`), checked."""
    act = int(act)
    if act not in (0, 1, 2, 3, 4):
        raise ValueError(f"unknown activation code {act} (0 none, 1 relu, 2 leaky_relu, 3 "
                         "sigmoid, 4 tanh)")  # fmt: skip
    if act and spec.dtype.kind != "f":
        raise ValueError(f"an activation needs a real floating result, not {spec.dtype}")
    if bias is not None:
        bias = cp.ascontiguousarray(cp.asarray(bias, dtype=spec.dtype)).reshape(-1)
        if bias.shape[0] != spec.c_out:
            raise ValueError(f"bias has {bias.shape[0]} elements; the problem has {spec.c_out} "
                             "output channels")  # fmt: skip
    return bias, np.int32(act), np.float64(slope)


def run(spec: ConvSpec, x, w, out=None, *, bias=None, act: int = 0, slope: float = 0.0):
    """y of the canonical problem for CuPy arrays ``x``, ``w`` (into ``out`` when given), with
    ``act(y + bias[channel])`` fused into the store when ``bias`` / ``act`` are given."""
    cp, x, w, y = prepare(spec, x, w, out, supports(spec), "the GPU direct kernels")
    epi = epilogue_args(spec, bias, act, slope, cp)
    if fast2d_reason(spec) is None:
        _run_fast2d(spec, x, w, y, cp, epi)
    elif fast1d_reason(spec) is None:
        _run_fast1d(spec, x, w, y, cp, epi)
    elif fast3d_reason(spec) is None:
        _run_fast3d(spec, x, w, y, cp, epi)
    else:
        _run_generic(spec, x, w, y, cp, epi)
    return y


def fast3d_launch(suffix: str, out_shape, planes: int):
    """(grid, block) of ``direct3d_fast_<suffix>``: columns along x, rows along y, (plane, brick
    of z) items along z (grid-strided past 65535)."""
    od, oh, ow = out_shape
    items = planes * -(-od // _build.fast3d_tz(suffix))
    grid = (
        -(-ow // _build.TILE3_W),
        -(-oh // _build.TILE3_H),
        max(1, min(items, _build.GRID_YZ_MAX)),
    )
    return grid, (_build.TILE3_W, _build.TILE3_H, 1)


def _filter_arg(spec: ConvSpec, w, source: str, defines: dict, cp):
    """(filter argument, upload) of a fast (single-channel or depthwise) kernel.  When one filter
    serves every plane and fits, w~ (spatially flipped for convolution) goes to the module's
    ``__constant__ c_filter`` inside ``with upload:`` around the launch, and the argument is None
    (a NULL pointer: the kernel reads c_filter); else the argument is w~ itself."""
    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * spec.ndim
    wt = cp.ascontiguousarray(w[flip] if spec.flip else w)
    if spec.c_in == 1 and _build.filter_in_constant(math.prod(spec.kernel_shape), suffix(spec)):
        module = _loader.get_module(source, defines)
        return None, _loader.constant_upload(module, "c_filter", wt)
    return wt, contextlib.nullcontext()


def _run_fast3d(spec: ConvSpec, x, w, y, cp, epi=NO_EPILOGUE) -> None:
    s = suffix(spec)
    defines = _build.fast3d_defines()
    kern = _loader.get_function("direct3d.cu", f"direct3d_fast_{s}", defines)
    wptr, upload = _filter_arg(spec, w, "direct3d.cu", defines, cp)
    channels = spec.c_in  # == c_out == groups (or 1)
    planes = spec.batch * channels
    grid, block = fast3d_launch(s, spec.out_shape, planes)
    ints = (*spec.in_shape, *spec.out_shape, *spec.pad_lo, channels, *spec.kernel_shape)
    args = (x, wptr, y, np.int64(planes), *(np.int32(v) for v in ints), *epi)
    with upload:
        _loader.launch(kern, grid, block, args)


def fast1d_launch(suffix: str, out_w: int, planes: int):
    """(grid, block) of ``direct1d_<suffix>``: output tiles along x, planes along y."""
    grid = (-(-out_w // _build.fast1d_tile(suffix)), max(1, min(planes, _build.GRID_YZ_MAX)), 1)
    return grid, (_build.FAST1D_THREADS, 1, 1)


def _run_fast1d(spec: ConvSpec, x, w, y, cp, epi=NO_EPILOGUE) -> None:
    s = suffix(spec)
    defines = _build.fast1d_defines()
    kern = _loader.get_function("direct1d.cu", f"direct1d_{s}", defines)
    wptr, upload = _filter_arg(spec, w, "direct1d.cu", defines, cp)
    k = spec.kernel_shape[0]
    channels = spec.c_in  # == c_out == groups (or 1)
    planes = spec.batch * channels
    grid, block = fast1d_launch(s, spec.out_shape[0], planes)
    args = (
        x, wptr, y, np.int64(planes), np.int32(spec.in_shape[0]), np.int32(spec.out_shape[0]),
        np.int32(spec.pad_lo[0]), np.int32(channels), np.int32(k), *epi,
    )  # fmt: skip
    with upload:
        _loader.launch(kern, grid, block, args)


def _run_fast2d(spec: ConvSpec, x, w, y, cp, epi=NO_EPILOGUE) -> None:
    s = suffix(spec)
    kh, kw = spec.kernel_shape
    defines = _build.fast2d_defines(kh, kw)
    kern = _loader.get_function(SOURCE, f"direct2d_{s}", defines)
    wptr, upload = _filter_arg(spec, w, SOURCE, defines, cp)
    channels = spec.c_in  # == c_out == groups (or 1)
    planes = spec.batch * channels
    h, wd = spec.in_shape
    oh, ow = spec.out_shape
    grid, block = _build.fast2d_launch(s, oh, ow, planes)
    args = (
        x, wptr, y, np.int64(planes), np.int32(h), np.int32(wd), np.int32(oh), np.int32(ow),
        np.int32(spec.pad_lo[0]), np.int32(spec.pad_lo[1]), np.int32(channels), *epi,
    )  # fmt: skip
    with upload:
        _loader.launch(kern, grid, block, args)


def _pad3(t, fill):
    return (fill,) * (3 - len(t)) + tuple(t)


def generic_launch(spec: ConvSpec):
    """(grid, block) of ``direct3d_generic_*`` for ``spec``."""
    spatial = math.prod(spec.out_shape)
    planes = spec.batch * spec.c_out
    b = _build.GENERIC_BLOCK
    grid = (
        max(1, min(-(-spatial // b), _GENERIC_MAX_GRID_X)),
        max(1, min(planes, _build.GRID_YZ_MAX)),
        1,
    )
    return grid, (b, 1, 1)


def generic_args(spec: ConvSpec, x, w, y, epi=NO_EPILOGUE) -> tuple:
    """The argument tuple of ``direct3d_generic_*`` (int32 scalars, 1-D/2-D padded to 3-D; the
    epilogue's bias, act, slope last)."""
    d, h, wd = _pad3(spec.in_shape, 1)
    od, oh, ow = _pad3(spec.out_shape, 1)
    kd, kh, kw = _pad3(spec.kernel_shape, 1)
    sd, sh, sw = _pad3(spec.stride, 1)
    dd, dh, dw = _pad3(spec.dilation, 1)
    pd, ph, pw = _pad3(spec.pad_lo, 0)
    ints = (
        spec.batch, spec.c_in, spec.c_out, spec.groups, d, h, wd, od, oh, ow, kd, kh, kw,
        sd, sh, sw, dd, dh, dw, pd, ph, pw, int(spec.flip),
    )  # fmt: skip
    return (x, w, y) + tuple(np.int32(v) for v in ints) + tuple(epi)


def _run_generic(spec: ConvSpec, x, w, y, cp, epi=NO_EPILOGUE) -> None:
    s = suffix(spec)
    defines = _build.generic_defines()
    kern = _loader.get_function(SOURCE, f"direct3d_generic_{s}", defines)
    grid, block = generic_launch(spec)
    _loader.launch(kern, grid, block, generic_args(spec, x, w, y, epi))


def supports_backward_data(spec: ConvSpec) -> str | None:
    """None when ``direct3d_transposed_*`` handles the backward-data pass of ``spec``."""
    reason = supports(spec)
    if reason is None and math.prod(spec.in_shape) > MAX_PLANE:
        reason = f"{math.prod(spec.in_shape)} input elements per plane (limit {MAX_PLANE})"
    return reason


def transposed_launch(spec: ConvSpec):
    """(grid, block) of ``direct3d_transposed_*``: a plane's input elements along x, the
    batch * c_in planes along y (grid-strided past 65535)."""
    spatial = math.prod(spec.in_shape)
    b = _build.GENERIC_BLOCK
    grid = (
        max(1, min(-(-spatial // b), _GENERIC_MAX_GRID_X)),
        max(1, min(spec.batch * spec.c_in, _build.GRID_YZ_MAX)),
        1,
    )
    return grid, (b, 1, 1)


def run_backward_data(spec: ConvSpec, dy, w):
    """``dx`` of ``spec`` from CuPy ``dy`` and ``w`` by the gather-form transposed kernel (any
    stride; no zero-inserted dy is built)."""
    reason = supports_backward_data(spec)
    if reason is not None:
        raise ValueError(
            f"the GPU direct kernels cannot do backward_data of this problem: {reason}"
        )
    from gpuconv._arrays import require_cupy

    cp = require_cupy()
    dy = cp.ascontiguousarray(cp.asarray(dy, dtype=spec.dtype))
    w = cp.ascontiguousarray(cp.asarray(w, dtype=spec.dtype))
    if tuple(dy.shape) != spec.y_shape or tuple(w.shape) != spec.w_shape:
        raise ValueError(
            f"dy {tuple(dy.shape)} / w {tuple(w.shape)} do not match {spec.y_shape} / {spec.w_shape}"
        )
    dx = cp.empty(spec.x_shape, dtype=spec.dtype)
    kern = _loader.get_function(
        SOURCE, f"direct3d_transposed_{suffix(spec)}", _build.generic_defines()
    )
    grid, block = transposed_launch(spec)
    args = generic_args(spec, dy, w, dx)[:-3]  # the same geometry; no epilogue
    _loader.launch(kern, grid, block, args)
    return dx
