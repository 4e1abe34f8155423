"""torch-shaped convolution functions on NumPy arrays: forward, transposed, and both gradients.

Semantics follow ``torch.nn.functional.conv{1,2,3}d`` / ``conv_transpose{1,2,3}d`` and
``torch.nn.grad.conv{1,2,3}d_input`` / ``conv{1,2,3}d_weight``: cross-correlation (no kernel flip,
nothing conjugated), ``input`` of shape ``(N, C_in, *spatial)`` (or unbatched ``(C_in, *spatial)``,
which returns an unbatched result), ``weight`` ``(C_out, C_in/groups, *kernel)`` for the forward
and ``(C_in, C_out/groups, *kernel)`` for the transposed convolution.

Every call is mapped onto one canonical :class:`~gpuconv._spec.ConvSpec` and run by
:func:`gpuconv.dispatch.execute` with ``op`` ``'forward'``, ``'backward_data'`` (the transposed
convolution and ``conv*_input``) or ``'backward_weight'`` (``conv*_weight``); ``algorithm`` is
``'auto'`` (the dispatcher's choice), ``'benchmark'`` (the fastest when timed, once per problem
signature, like ``torch.backends.cudnn.benchmark``) or a registered name
(:func:`gpuconv.algorithm_names`).

dtypes: the result dtype is ``numpy.result_type(input, weight, float32)`` (float32, float64,
complex64 or complex128), except that integer and bool inputs (every operand) compute in float64,
exact while the sums stay below 2**53; ``bias`` is cast to it.  Forcing ``algorithm='fft'``
spreads a NaN or inf in the input to the whole output, as every FFT does; 'auto' picks it only
for large kernels, and 'direct' keeps them local.
For complex dtypes the gradients are the transposes of the linear maps (no conjugation), which
torch's autograd would conjugate.  Impossible arguments raise ValueError / TypeError naming the
offending numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _arrays, _epilogue, dispatch
from ._spec import ConvSpec, as_index

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv1d_input",
    "conv2d_input",
    "conv3d_input",
    "conv1d_weight",
    "conv2d_weight",
    "conv3d_weight",
]

Array = Any  # a NumPy or CuPy array, or anything numpy.asarray takes
Size = int | Sequence[int]  # one value for every spatial axis, or one per axis
Padding = int | Sequence[int] | str

_COMPUTE = (np.float32, np.float64, np.complex64, np.complex128)
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_NP_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# --------------------------------------------------------------------------------------------
# argument checking


def _array(fn: str, name: str, a) -> np.ndarray:
    a = a if _arrays.is_cupy_array(a) else np.asarray(a)
    if a.dtype.kind not in "biufc":
        raise TypeError(f"{fn}: {name} must be a numeric array, got dtype {a.dtype}")
    return a


def _device(fn: str, device, *arrays) -> tuple[str, bool]:
    """``(device, back)``: where a call runs (CuPy inputs or ``device='cuda'``: the GPU) and
    whether its result goes back to the host (``device='cuda'`` with NumPy inputs)."""
    dev = _arrays.resolve_device(*arrays, device=device)
    back = dev == "cuda" and not any(_arrays.is_cupy_array(a) for a in arrays)
    return dev, back


def _result_dtype(fn: str, *arrays) -> np.dtype:
    if all(a.dtype.kind in "biu" for a in arrays):
        # float32 would round integer sums above 2**24 (int16 products already reach 2**30)
        return np.dtype(np.float64)
    dt = np.result_type(*(a.dtype for a in arrays), np.float32)
    if dt not in _COMPUTE:
        raise TypeError(
            f"{fn}: unsupported dtype {dt} (float32, float64, complex64 or complex128; "
            f"got {', '.join(str(a.dtype) for a in arrays)})"
        )
    return dt


def _ints(fn: str, name: str, value, nd: int, minimum: int) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        items = tuple(as_index(f"{fn}: {name}[{i}]", v) for i, v in enumerate(value))
        if len(items) == 1 and nd > 1:
            items = items * nd
        if len(items) != nd:
            raise ValueError(f"{fn}: {name} must be an int or {nd} ints, got {value!r}")
    else:
        items = (as_index(f"{fn}: {name}", value),) * nd
    bad = [v for v in items if v < minimum]
    if bad:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{fn}: {name} must be {what} on every axis, got {value!r}")
    return items


def _groups(fn: str, groups) -> int:
    g = as_index(f"{fn}: groups", groups)
    if g < 1:
        raise ValueError(f"{fn}: groups must be a positive integer, got {g}")
    return g


def _padding(fn, padding, nd, kernel, stride, dilation):
    """(pad_lo, pad_hi) from an int, a tuple, 'same' or 'valid' (torch's conventions)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * nd, (0,) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"{fn}: padding='same' is not supported for strided convolutions "
                    f"(stride={stride})"
                )
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            lo = tuple(t // 2 for t in total)
            return lo, tuple(t - a for t, a in zip(total, lo))
        raise ValueError(
            f"{fn}: padding must be 'same', 'valid', an int or {nd} ints, got {padding!r}"
        )
    p = _ints(fn, "padding", padding, nd, 0)
    return p, p


def _batched(fn: str, name: str, a: np.ndarray, nd: int) -> tuple[np.ndarray, bool]:
    """``a`` with a batch axis, and whether it was unbatched."""
    if a.ndim == nd + 1:
        return a[None], True
    if a.ndim != nd + 2:
        raise ValueError(
            f"{fn}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) {name}, "
            f"got {a.ndim}-D of shape {a.shape}"
        )
    return a, False


def _check_weight(fn: str, w: np.ndarray, nd: int, layout: str) -> None:
    if w.ndim != nd + 2:
        raise ValueError(f"{fn}: weight must be {nd + 2}-D {layout}, got shape {w.shape}")
    if any(v < 1 for v in w.shape):
        raise ValueError(f"{fn}: weight has an empty axis: shape {w.shape}")


def _spec(fn, nd, x_shape, w_shape, stride, pad_lo, pad_hi, dilation, groups, dtype) -> ConvSpec:
    """The canonical forward problem, after checking every number with a message naming it."""
    n, c_in, *spatial = x_shape
    c_out, cig, *kernel = w_shape
    if c_in % groups:
        raise ValueError(f"{fn}: input channels ({c_in}) must be divisible by groups ({groups})")
    if c_out % groups:
        raise ValueError(f"{fn}: output channels ({c_out}) must be divisible by groups ({groups})")
    if cig * groups != c_in:
        raise ValueError(
            f"{fn}: weight of shape {tuple(w_shape)} expects {cig * groups} input channels "
            f"(weight.shape[1] * groups = {cig} * {groups}), but the input has {c_in}"
        )
    if any(v < 1 for v in spatial):
        raise ValueError(f"{fn}: input has an empty spatial axis: shape {tuple(x_shape)}")
    for ax in range(nd):
        padded = spatial[ax] + pad_lo[ax] + pad_hi[ax]
        reach = dilation[ax] * (kernel[ax] - 1) + 1
        if padded < reach:
            raise ValueError(
                f"{fn}: axis {ax}: the padded input ({spatial[ax]} + {pad_lo[ax]} + "
                f"{pad_hi[ax]} = {padded}) is smaller than the dilated kernel "
                f"({dilation[ax]} * ({kernel[ax]} - 1) + 1 = {reach}); the output would be empty"
            )
    return ConvSpec(
        in_shape=tuple(spatial),
        kernel_shape=tuple(kernel),
        batch=max(n, 1),
        c_in=c_in,
        c_out=c_out,
        groups=groups,
        stride=stride,
        dilation=dilation,
        pad_lo=pad_lo,
        pad_hi=pad_hi,
        dtype=dtype,
    )


def _bias(fn: str, bias, c_out: int, dtype: np.dtype):
    if bias is None:
        return None
    b = _array(fn, "bias", bias)
    if b.shape != (c_out,):
        raise ValueError(
            f"{fn}: bias must have shape ({c_out},) (one per output channel), got {b.shape}"
        )
    if b.dtype.kind == "c" and np.dtype(dtype).kind != "c":
        raise TypeError(f"{fn}: complex bias ({b.dtype}) for a real result ({dtype})")
    return b.astype(dtype, copy=False)


# --------------------------------------------------------------------------------------------
# forward


def _conv(
    nd, input, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm, device,
    activation=None, negative_slope=0.01,
):  # fmt: skip
    """conv{nd}d: the one place the nn fronts pick a device (see :func:`conv2d`)."""
    fn = f"conv{nd}d"
    dev = _arrays.resolve_device(input, weight, bias, device=device)
    back = dev == "cuda" and not any(_arrays.is_cupy_array(a) for a in (input, weight, bias))
    x = _array(fn, "input", input)
    w = _array(fn, "weight", weight)
    _check_weight(fn, w, nd, "(C_out, C_in/groups, *kernel)")
    x, unbatched = _batched(fn, "input", x, nd)
    dt = _result_dtype(fn, x, w)
    g = _groups(fn, groups)
    st = _ints(fn, "stride", stride, nd, 1)
    dl = _ints(fn, "dilation", dilation, nd, 1)
    lo, hi = _padding(fn, padding, nd, w.shape[2:], st, dl)
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"{fn}: padding_mode must be one of {', '.join(map(repr, PADDING_MODES))}, "
            f"got {padding_mode!r}"
        )
    if padding_mode != "zeros" and (any(lo) or any(hi)):
        for ax in range(nd):
            n_ax = x.shape[2 + ax]
            p = max(lo[ax], hi[ax])
            if padding_mode == "reflect" and p >= n_ax:
                raise ValueError(
                    f"{fn}: reflect padding ({lo[ax]}, {hi[ax]}) must be smaller than the input "
                    f"size {n_ax} on spatial axis {ax}"
                )
            if padding_mode == "circular" and p > n_ax:
                raise ValueError(
                    f"{fn}: circular padding ({lo[ax]}, {hi[ax]}) must not exceed the input "
                    f"size {n_ax} on spatial axis {ax} (it would wrap around more than once)"
                )
            if n_ax < 1:
                raise ValueError(f"{fn}: input has an empty spatial axis: shape {x.shape}")
        xp = _arrays.xp_of(x)
        x = xp.pad(x, ((0, 0), (0, 0)) + tuple(zip(lo, hi)), mode=_NP_MODES[padding_mode])
        lo = hi = (0,) * nd
    spec = _spec(fn, nd, x.shape, w.shape, st, lo, hi, dl, g, dt)
    b = _bias(fn, bias, spec.c_out, dt)
    act, slope = _epilogue.check(fn, activation, negative_slope, dt)
    if dev == "cuda" and algorithm not in ("auto", "benchmark"):
        dispatch.get_algorithm(algorithm, "cuda")  # reject a name the GPU has not
    if b is not None and dev == "cuda":
        b = _arrays.to_device(b)
    if x.shape[0] == 0:
        y = _arrays.xp_of(x).zeros((0, spec.c_out) + spec.out_shape, dtype=dt)
    else:  # bias and activation fused into the convolution where the algorithm can
        y = dispatch.execute(spec, x, w, algorithm, device=dev, epilogue=(b, act, slope))
    y = y[0] if unbatched else y
    return _arrays.to_host(y) if back else y


def conv1d(
    input: Array, weight: Array, bias: Array | None = None, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, padding_mode: str = "zeros",
    algorithm: str = "auto", device: str | None = None, activation: str | None = None,
    negative_slope: float = 0.01,
) -> Array:  # fmt: skip
    """1-D cross-correlation as ``torch.nn.functional.conv1d`` (plus ``padding_mode``).

    >>> conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)), padding=1)[0, 0]
    array([2., 3., 3., 3., 2.])
    """
    return _conv(
        1, input, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm,
        device, activation, negative_slope,
    )  # fmt: skip


def conv2d(
    input: Array, weight: Array, bias: Array | None = None, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, padding_mode: str = "zeros",
    algorithm: str = "auto", device: str | None = None, activation: str | None = None,
    negative_slope: float = 0.01,
) -> Array:  # fmt: skip
    """2-D cross-correlation as ``torch.nn.functional.conv2d`` (plus ``padding_mode``).

    ``padding``: an int, one int per axis, ``'valid'`` or ``'same'`` (stride 1 only; the extra
    sample of an even dilated kernel goes to the end); ``padding_mode``: ``'zeros'``,
    ``'reflect'``, ``'replicate'`` or ``'circular'`` (the input is pre-padded as by
    ``torch.nn.functional.pad``); ``device``: None (follow the inputs: CuPy arrays run on the GPU
    and a CuPy array comes back), ``'cpu'`` (CuPy inputs are a TypeError) or ``'cuda'`` (NumPy
    inputs are copied to the GPU and the result back).
    ``activation``: None, ``'relu'``, ``'leaky_relu'`` (with ``negative_slope``), ``'sigmoid'``
    or ``'tanh'``, applied with the bias in one pass over the output (real dtypes).

    >>> x = np.array([[[[1.0, -2.0], [3.0, -4.0]]]])
    >>> conv2d(x, np.ones((1, 1, 1, 1)), np.array([0.5]), activation="relu")[0, 0]
    array([[1.5, 0. ],
           [3.5, 0. ]])
    """
    return _conv(
        2, input, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm,
        device, activation, negative_slope,
    )  # fmt: skip


def conv3d(
    input: Array, weight: Array, bias: Array | None = None, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, padding_mode: str = "zeros",
    algorithm: str = "auto", device: str | None = None, activation: str | None = None,
    negative_slope: float = 0.01,
) -> Array:  # fmt: skip
    """3-D cross-correlation as ``torch.nn.functional.conv3d`` (plus ``padding_mode``).

    Arguments as for :func:`conv2d`, with one value per axis for three spatial axes.

    >>> conv3d(np.ones((1, 1, 3, 3, 3)), np.ones((1, 1, 2, 2, 2)))[0, 0, 0]
    array([[8., 8.],
           [8., 8.]])
    """
    return _conv(
        3, input, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm,
        device, activation, negative_slope,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# transposed convolution


def _transposed_spec(fn, nd, in_spatial, spec_n, c_in, w_shape, st, p, op, dl, g, dt):
    """(forward spec whose backward_data is this transposed convolution, its input's cut tail,
    the transposed output's spatial shape); the spec is None when the output is all zero."""
    kernel = w_shape[2:]
    out, hi, cut = [], [], []
    for ax in range(nd):
        o = (in_spatial[ax] - 1) * st[ax] - 2 * p[ax] + dl[ax] * (kernel[ax] - 1) + op[ax] + 1
        if o < 1:
            raise ValueError(
                f"{fn}: axis {ax}: the output size ({in_spatial[ax]} - 1) * {st[ax]} - 2 * "
                f"{p[ax]} + {dl[ax]} * ({kernel[ax]} - 1) + {op[ax]} + 1 = {o} is below 1"
            )
        out.append(o)
        # the forward problem must map a (o - cut)-long input onto exactly in_spatial outputs
        hi.append(max(0, p[ax] - op[ax]))
        cut.append(max(0, op[ax] - p[ax] - st[ax] + 1))
    if any(c >= o for c, o in zip(cut, out)):
        return None, cut, tuple(out)
    x_shape = tuple(o - c for o, c in zip(out, cut))
    spec = _adjoint_spec(x_shape, in_spatial, spec_n, c_in, w_shape, st, dl, p, hi, g, dt)
    return spec, cut, tuple(out)


def _adjoint_spec(x_shape, in_spatial, spec_n, c_in, w_shape, st, dl, lo, hi, g, dt) -> ConvSpec:
    """The forward problem (input ``x_shape``, padding ``lo``/``hi``) whose output has the
    transposed convolution's input shape ``in_spatial``: its backward_data pass is the
    transposed convolution."""
    spec = ConvSpec(
        in_shape=tuple(x_shape),
        kernel_shape=tuple(w_shape[2:]),
        batch=spec_n,
        c_in=w_shape[1] * g,
        c_out=c_in,
        groups=g,
        stride=st,
        dilation=dl,
        pad_lo=tuple(lo),
        pad_hi=tuple(hi),
        dtype=dt,
    )
    if spec.out_shape != tuple(in_spatial):  # pragma: no cover - an internal invariant
        raise RuntimeError(f"transposed-convolution remap {spec.out_shape} != {in_spatial}")
    return spec


def _same_transposed_spec(in_spatial, spec_n, c_in, w_shape, st, dl, g, dt):
    """:func:`_transposed_spec` for padding='same': the output is ``input * stride`` long, the
    adjoint of a forward convolution of that input padded as TensorFlow's 'SAME' (total
    ``max(dilation*(k-1) + 1 - stride, 0)``, the odd one after), which at stride 1 is
    torch's padding='same'."""
    out = tuple(i * s for i, s in zip(in_spatial, st))
    total = [max(d * (k - 1) + 1 - s, 0) for k, d, s in zip(w_shape[2:], dl, st)]
    lo = [t // 2 for t in total]
    hi = [t - a for t, a in zip(total, lo)]
    spec = _adjoint_spec(out, in_spatial, spec_n, c_in, w_shape, st, dl, lo, hi, g, dt)
    return spec, (0,) * len(out), out


def _conv_transpose(nd, input, weight, bias, stride, padding, output_padding, groups, dilation,
                    algorithm, device=None):  # fmt: skip
    fn = f"conv_transpose{nd}d"
    dev, back = _device(fn, device, input, weight, bias)
    x = _array(fn, "input", input)
    w = _array(fn, "weight", weight)
    _check_weight(fn, w, nd, "(C_in, C_out/groups, *kernel)")
    x, unbatched = _batched(fn, "input", x, nd)
    dt = _result_dtype(fn, x, w)
    g = _groups(fn, groups)
    st = _ints(fn, "stride", stride, nd, 1)
    dl = _ints(fn, "dilation", dilation, nd, 1)
    same = isinstance(padding, str) and padding == "same"
    if isinstance(padding, str) and not same:
        raise ValueError(f"{fn}: padding must be 'same', an int or {nd} ints, got {padding!r}")
    p = (0,) * nd if same else _ints(fn, "padding", padding, nd, 0)
    op = _ints(fn, "output_padding", output_padding, nd, 0)
    if same and any(op):
        raise ValueError(
            f"{fn}: padding='same' fixes the output size (input * stride); "
            f"output_padding must be 0, got {output_padding!r}"
        )
    for ax in range(nd):
        if not (op[ax] < st[ax] or op[ax] < dl[ax]):
            raise ValueError(
                f"{fn}: output_padding ({op[ax]}) must be smaller than either stride "
                f"({st[ax]}) or dilation ({dl[ax]}) on axis {ax}"
            )
    n, c_in = x.shape[:2]
    if w.shape[0] != c_in:
        raise ValueError(
            f"{fn}: weight of shape {w.shape} expects {w.shape[0]} input channels "
            f"(weight.shape[0]), but the input has {c_in}"
        )
    if c_in % g:
        raise ValueError(f"{fn}: input channels ({c_in}) must be divisible by groups ({g})")
    if any(v < 1 for v in x.shape[2:]):
        raise ValueError(f"{fn}: input has an empty spatial axis: shape {x.shape}")
    c_out = w.shape[1] * g
    if same:
        spec, cut, out = _same_transposed_spec(x.shape[2:], max(n, 1), c_in, w.shape, st, dl, g, dt)
    else:
        spec, cut, out = _transposed_spec(fn, nd, x.shape[2:], max(n, 1), c_in, w.shape, st, p,
                                          op, dl, g, dt)  # fmt: skip
    b = _bias(fn, bias, c_out, dt)
    xp = np if dev == "cpu" else _arrays.require_cupy()
    if b is not None and dev == "cuda":
        b = _arrays.to_device(b)
    y = xp.zeros((n, c_out) + out, dtype=dt)
    if spec is not None and n > 0:
        dx = dispatch.execute(spec, x, w, algorithm, op="backward_data", device=dev)
        y[(slice(None), slice(None)) + tuple(slice(0, o - c) for o, c in zip(out, cut))] = dx
    elif algorithm not in ("auto", "benchmark"):
        dispatch.get_algorithm(algorithm, dev)  # still reject an unknown name
    y = _epilogue.apply(y, b, 0, 0.0)
    y = y[0] if unbatched else y
    return _arrays.to_host(y) if back else y


def conv_transpose1d(
    input: Array, weight: Array, bias: Array | None = None, stride: Size = 1,
    padding: Padding = 0, output_padding: Size = 0, groups: int = 1, dilation: Size = 1, *,
    algorithm: str = "auto", device: str | None = None,
) -> Array:  # fmt: skip
    """1-D transposed convolution as ``torch.nn.functional.conv_transpose1d``.

    Output length ``(L - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1``, or
    with ``padding='same'`` (which torch lacks) ``L*stride``: the adjoint of a forward
    convolution padded as TensorFlow's 'SAME' (Keras ``Conv1DTranspose(padding='same')``),
    at stride 1 the adjoint of ``conv1d(padding='same')``.

    >>> conv_transpose1d(np.ones((1, 1, 3)), np.ones((1, 1, 2)), stride=2)[0, 0]
    array([1., 1., 1., 1., 1., 1.])
    >>> conv_transpose1d(np.ones((1, 1, 3)), np.ones((1, 1, 3)), stride=2, padding="same")[0, 0]
    array([1., 1., 2., 1., 2., 1.])
    """
    return _conv_transpose(1, input, weight, bias, stride, padding, output_padding, groups,
                           dilation, algorithm, device)  # fmt: skip


def conv_transpose2d(
    input: Array, weight: Array, bias: Array | None = None, stride: Size = 1,
    padding: Padding = 0, output_padding: Size = 0, groups: int = 1, dilation: Size = 1, *,
    algorithm: str = "auto", device: str | None = None,
) -> Array:  # fmt: skip
    """2-D transposed convolution as ``torch.nn.functional.conv_transpose2d``.

    The backward-data pass of the forward convolution with the same arguments; weight
    ``(C_in, C_out/groups, kH, kW)``.  ``padding='same'`` gives an output ``stride`` times the
    input (see :func:`conv_transpose1d`).

    >>> conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2)[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """
    return _conv_transpose(2, input, weight, bias, stride, padding, output_padding, groups,
                           dilation, algorithm, device)  # fmt: skip


def conv_transpose3d(
    input: Array, weight: Array, bias: Array | None = None, stride: Size = 1,
    padding: Padding = 0, output_padding: Size = 0, groups: int = 1, dilation: Size = 1, *,
    algorithm: str = "auto", device: str | None = None,
) -> Array:  # fmt: skip
    """3-D transposed convolution as ``torch.nn.functional.conv_transpose3d``;
    ``padding='same'`` as in :func:`conv_transpose1d`.

    >>> conv_transpose3d(np.ones((1, 1, 1, 1, 2)), np.ones((1, 1, 1, 1, 3)), stride=2)[0, 0, 0]
    array([[1., 1., 2., 1., 1.]])
    """
    return _conv_transpose(3, input, weight, bias, stride, padding, output_padding, groups,
                           dilation, algorithm, device)  # fmt: skip


# --------------------------------------------------------------------------------------------
# gradients (torch.nn.grad)


def _shape(fn: str, name: str, value) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise TypeError(f"{fn}: {name} must be a sequence of ints, got {value!r}")
    shape = tuple(as_index(f"{fn}: {name}[{i}]", v) for i, v in enumerate(value))
    if any(v < 0 for v in shape):
        raise ValueError(f"{fn}: {name} must not hold negative sizes, got {shape}")
    return shape


def _grad_problem(fn, nd, x_shape, w_shape, dy, stride, padding, dilation, groups, dt):
    """The forward spec of a gradient call; checks grad_output's shape against it."""
    g = _groups(fn, groups)
    st = _ints(fn, "stride", stride, nd, 1)
    dl = _ints(fn, "dilation", dilation, nd, 1)
    if len(w_shape) != nd + 2:
        raise ValueError(
            f"{fn}: weight must be {nd + 2}-D (C_out, C_in/groups, *kernel), got shape {w_shape}"
        )
    if any(v < 1 for v in w_shape):
        raise ValueError(f"{fn}: weight has an empty axis: shape {w_shape}")
    lo, hi = _padding(fn, padding, nd, w_shape[2:], st, dl)
    spec = _spec(fn, nd, x_shape, w_shape, st, lo, hi, dl, g, dt)
    want = (x_shape[0], spec.c_out) + spec.out_shape
    if dy.shape != want:
        raise ValueError(
            f"{fn}: grad_output has shape {dy.shape}, but an input of shape {tuple(x_shape)} and "
            f"a weight of shape {tuple(w_shape)} (stride {st}, padding {padding!r}, dilation {dl}, "
            f"groups {g}) give an output of shape {want}"
        )
    return spec


def _conv_input(nd, input_size, weight, grad_output, stride, padding, dilation, groups, algorithm,
                device=None):  # fmt: skip
    fn = f"conv{nd}d_input"
    dev, back = _device(fn, device, weight, grad_output)
    w = _array(fn, "weight", weight)
    dy = _array(fn, "grad_output", grad_output)
    size = _shape(fn, "input_size", input_size)
    unbatched = False
    if len(size) == nd + 1:
        size, unbatched = (1,) + size, True
        if dy.ndim != nd + 1:
            raise ValueError(
                f"{fn}: an unbatched input_size {size[1:]} needs an unbatched ({nd + 1}-D) "
                f"grad_output, got shape {dy.shape}"
            )
        dy = dy[None]
    elif len(size) != nd + 2:
        raise ValueError(
            f"{fn}: input_size must have {nd + 2} (or {nd + 1}, unbatched) entries, got {size}"
        )
    dt = _result_dtype(fn, w, dy)
    spec = _grad_problem(fn, nd, size, w.shape, dy, stride, padding, dilation, groups, dt)
    if size[0] == 0:
        dx = (np if dev == "cpu" else _arrays.require_cupy()).zeros(size, dtype=dt)
    else:
        dx = dispatch.execute(spec, dy, w, algorithm, op="backward_data", device=dev)
    dx = dx[0] if unbatched else dx
    return _arrays.to_host(dx) if back else dx


def _conv_weight(nd, input, weight_size, grad_output, stride, padding, dilation, groups, algorithm,
                 device=None):  # fmt: skip
    fn = f"conv{nd}d_weight"
    dev, back = _device(fn, device, input, grad_output)
    x = _array(fn, "input", input)
    dy = _array(fn, "grad_output", grad_output)
    wsize = _shape(fn, "weight_size", weight_size)
    x, unbatched = _batched(fn, "input", x, nd)
    if unbatched:
        dy, ub = _batched(fn, "grad_output", dy, nd)
        if not ub:
            raise ValueError(
                f"{fn}: an unbatched input needs an unbatched grad_output, got {dy.shape}"
            )
    dt = _result_dtype(fn, x, dy)
    spec = _grad_problem(fn, nd, x.shape, wsize, dy, stride, padding, dilation, groups, dt)
    if x.shape[0] == 0:
        dw = (np if dev == "cpu" else _arrays.require_cupy()).zeros(wsize, dtype=dt)
    else:
        dw = dispatch.execute(spec, x, dy, algorithm, op="backward_weight", device=dev)
    return _arrays.to_host(dw) if back else dw


def conv1d_input(
    input_size: Sequence[int], weight: Array, grad_output: Array, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, algorithm: str = "auto",
    device: str | None = None,
) -> Array:  # fmt: skip
    """Gradient of :func:`conv1d` with respect to its input, as ``torch.nn.grad.conv1d_input``.

    >>> conv1d_input((1, 1, 5), np.ones((1, 1, 3)), np.ones((1, 1, 3)))[0, 0]
    array([1., 2., 3., 2., 1.])
    """
    return _conv_input(1, input_size, weight, grad_output, stride, padding, dilation, groups,
                       algorithm, device)  # fmt: skip


def conv2d_input(
    input_size: Sequence[int], weight: Array, grad_output: Array, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, algorithm: str = "auto",
    device: str | None = None,
) -> Array:  # fmt: skip
    """Gradient of :func:`conv2d` with respect to its input, as ``torch.nn.grad.conv2d_input``.

    >>> conv2d_input((1, 1, 3, 3), np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    return _conv_input(2, input_size, weight, grad_output, stride, padding, dilation, groups,
                       algorithm, device)  # fmt: skip


def conv3d_input(
    input_size: Sequence[int], weight: Array, grad_output: Array, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, algorithm: str = "auto",
    device: str | None = None,
) -> Array:  # fmt: skip
    """Gradient of :func:`conv3d` with respect to its input, as ``torch.nn.grad.conv3d_input``.

    >>> conv3d_input((1, 1, 1, 1, 3), np.ones((1, 1, 1, 1, 2)), np.ones((1, 1, 1, 1, 2)))[0, 0, 0]
    array([[1., 2., 1.]])
    """
    return _conv_input(3, input_size, weight, grad_output, stride, padding, dilation, groups,
                       algorithm, device)  # fmt: skip


def conv1d_weight(
    input: Array, weight_size: Sequence[int], grad_output: Array, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, algorithm: str = "auto",
    device: str | None = None,
) -> Array:  # fmt: skip
    """Gradient of :func:`conv1d` with respect to its weight, as ``torch.nn.grad.conv1d_weight``.

    >>> conv1d_weight(np.arange(5.0).reshape(1, 1, 5), (1, 1, 3), np.ones((1, 1, 3)))[0, 0]
    array([3., 6., 9.])
    """
    return _conv_weight(1, input, weight_size, grad_output, stride, padding, dilation, groups,
                        algorithm, device)  # fmt: skip


def conv2d_weight(
    input: Array, weight_size: Sequence[int], grad_output: Array, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, algorithm: str = "auto",
    device: str | None = None,
) -> Array:  # fmt: skip
    """Gradient of :func:`conv2d` with respect to its weight, as ``torch.nn.grad.conv2d_weight``.

    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> conv2d_weight(x, (1, 1, 2, 2), np.ones((1, 1, 2, 2)))[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    return _conv_weight(2, input, weight_size, grad_output, stride, padding, dilation, groups,
                        algorithm, device)  # fmt: skip


def conv3d_weight(
    input: Array, weight_size: Sequence[int], grad_output: Array, stride: Size = 1,
    padding: Padding = 0, dilation: Size = 1, groups: int = 1, *, algorithm: str = "auto",
    device: str | None = None,
) -> Array:  # fmt: skip
    """Gradient of :func:`conv3d` with respect to its weight, as ``torch.nn.grad.conv3d_weight``.

    >>> x = np.arange(3.0).reshape(1, 1, 1, 1, 3)
    >>> conv3d_weight(x, (1, 1, 1, 1, 2), np.ones((1, 1, 1, 1, 2)))[0, 0, 0]
    array([[1., 3.]])
    """
    return _conv_weight(3, input, weight_size, grad_output, stride, padding, dilation, groups,
                        algorithm, device)  # fmt: skip
