"""The canonical convolution problem every algorithm solves.

Every public front (the scipy.signal drop-ins, later the torch-shaped functions) maps its call
onto one :class:`ConvSpec`; every algorithm implements only this operation::

    y[n, g*Cog + o, p] = sum_{c < Cig, j} xpad[n, g*Cig + c, p*stride + j*dilation] * w~[g*Cog + o, c, j]

with ``x`` of shape ``(batch, c_in, *in_shape)``, ``w`` of shape ``(c_out, c_in // groups,
*kernel_shape)``, ``y`` of shape ``(batch, c_out, *out_shape)``, ``xpad`` the input with
``pad_lo`` / ``pad_hi`` zeros added on each spatial axis, ``Cig = c_in // groups``,
``Cog = c_out // groups`` and ``w~`` the kernel reversed along every spatial axis when ``flip``
(convolution) and as given otherwise (cross-correlation).  Nothing is conjugated here: the fronts
conjugate where their semantics ask for it.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from functools import cached_property
from math import prod

import numpy as np

#: dtypes an algorithm computes in.  Integer problems compute exactly in int64 (wrap-around then
#: matches a narrower integer type's modular arithmetic bit for bit after the cast back).
COMPUTE_DTYPES = (
    np.dtype(np.float32),
    np.dtype(np.float64),
    np.dtype(np.complex64),
    np.dtype(np.complex128),
    np.dtype(np.int64),
)


def as_index(name: str, value) -> int:
    """``value`` as a Python int, or a TypeError naming ``name``."""
    if type(value) is int:  # the common case, first (bool is a subclass, not int itself)
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r} of type bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer, got {value!r} of type {type(value).__name__}"
        ) from None


def as_tuple(name: str, value, ndim: int, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of ``ndim`` ints, each at least ``minimum``, as a tuple.

    >>> as_tuple("stride", 2, 3, 1)
    (2, 2, 2)
    """
    if isinstance(value, (list, tuple)):
        items = tuple(as_index(f"{name}[{i}]", v) for i, v in enumerate(value))
        if len(items) != ndim:
            raise ValueError(f"{name} must have one entry per spatial axis ({ndim}), got {value!r}")
    else:
        items = (as_index(name, value),) * ndim
    for v in items:
        if v < minimum:
            raise ValueError(f"{name} must be >= {minimum} on every axis, got {value!r}")
    return items


@dataclass(frozen=True)
class ConvSpec:
    """One convolution problem in canonical form (see the module docstring for the formula).

    >>> s = ConvSpec(in_shape=(5,), kernel_shape=(3,), pad_lo=(2,), pad_hi=(2,), flip=True)
    >>> s.out_shape
    (7,)
    """

    in_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    batch: int = 1
    c_in: int = 1
    c_out: int = 1
    groups: int = 1
    stride: tuple[int, ...] = field(default=None)  # type: ignore[assignment]
    dilation: tuple[int, ...] = field(default=None)  # type: ignore[assignment]
    pad_lo: tuple[int, ...] = field(default=None)  # type: ignore[assignment]
    pad_hi: tuple[int, ...] = field(default=None)  # type: ignore[assignment]
    flip: bool = False
    dtype: np.dtype = np.dtype(np.float64)

    def __post_init__(self):
        set_ = object.__setattr__
        in_shape = tuple(as_index("in_shape", v) for v in self.in_shape)
        kernel_shape = tuple(as_index("kernel_shape", v) for v in self.kernel_shape)
        nd = len(in_shape)
        if nd < 1:
            raise ValueError("a convolution needs at least one spatial axis")
        if len(kernel_shape) != nd:
            raise ValueError(
                f"kernel_shape {kernel_shape} and in_shape {in_shape} differ in dimensionality"
            )
        if any(v < 1 for v in in_shape) or any(v < 1 for v in kernel_shape):
            raise ValueError(
                f"every spatial size must be >= 1, got in_shape={in_shape}, "
                f"kernel_shape={kernel_shape}"
            )
        set_(self, "in_shape", in_shape)
        set_(self, "kernel_shape", kernel_shape)
        set_(self, "stride", as_tuple("stride", 1 if self.stride is None else self.stride, nd, 1))
        set_(
            self,
            "dilation",
            as_tuple("dilation", 1 if self.dilation is None else self.dilation, nd, 1),
        )
        set_(self, "pad_lo", as_tuple("pad_lo", 0 if self.pad_lo is None else self.pad_lo, nd, 0))
        set_(self, "pad_hi", as_tuple("pad_hi", 0 if self.pad_hi is None else self.pad_hi, nd, 0))
        for name in ("batch", "c_in", "c_out", "groups"):
            v = as_index(name, getattr(self, name))
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
            set_(self, name, v)
        if self.c_in % self.groups or self.c_out % self.groups:
            raise ValueError(
                f"c_in ({self.c_in}) and c_out ({self.c_out}) must both be divisible by "
                f"groups ({self.groups})"
            )
        dtype = np.dtype(self.dtype)
        if dtype not in COMPUTE_DTYPES:
            raise TypeError(
                f"dtype {dtype} is not a compute dtype; allowed: "
                + ", ".join(str(d) for d in COMPUTE_DTYPES)
            )
        set_(self, "dtype", dtype)
        set_(self, "flip", bool(self.flip))
        for ax, (n, reach) in enumerate(zip(self.padded_shape, self.reach)):
            if n < reach:
                raise ValueError(
                    f"axis {ax}: the padded input ({n}) is shorter than the dilated kernel "
                    f"({reach}); the output would be empty"
                )

    @property
    def ndim(self) -> int:
        """Number of spatial axes."""
        return len(self.in_shape)

    @cached_property  # the fields are frozen; 'auto' asks several times per call
    def padded_shape(self) -> tuple[int, ...]:
        return tuple(n + lo + hi for n, lo, hi in zip(self.in_shape, self.pad_lo, self.pad_hi))

    @cached_property
    def reach(self) -> tuple[int, ...]:
        """The dilated kernel's extent per axis: ``dilation * (k - 1) + 1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_shape, self.dilation))

    @cached_property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(
            (n - r) // s + 1 for n, r, s in zip(self.padded_shape, self.reach, self.stride)
        )

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_in, *self.in_shape)

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.c_out, self.c_in // self.groups, *self.kernel_shape)

    @property
    def y_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_out, *self.out_shape)

    @property
    def is_complex(self) -> bool:
        return self.dtype.kind == "c"

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the direct algorithm (zeros in the padding included)."""
        return (
            self.batch
            * self.c_out
            * (self.c_in // self.groups)
            * prod(self.out_shape)
            * prod(self.kernel_shape)
        )

    @property
    def flops(self) -> int:
        """Real floating-point operations of the direct algorithm (a complex MAC is 8)."""
        return self.macs * (8 if self.is_complex else 2)

    @property
    def min_bytes(self) -> int:
        """Bytes any algorithm must move at least: read x and w once, write y once."""
        elems = prod(self.x_shape) + prod(self.w_shape) + prod(self.y_shape)
        return elems * self.dtype.itemsize

    def kernel_for_correlation(self, w: np.ndarray) -> np.ndarray:
        """``w`` as the cross-correlation kernel ``w~``: reversed on spatial axes when ``flip``."""
        if not self.flip:
            return w
        return w[(slice(None), slice(None)) + (slice(None, None, -1),) * self.ndim]

    def padded_input(self, x: np.ndarray) -> np.ndarray:
        """``x`` with the zero padding of ``pad_lo`` / ``pad_hi`` applied (no copy if none)."""
        if not any(self.pad_lo) and not any(self.pad_hi):
            return x
        return np.pad(x, ((0, 0), (0, 0)) + tuple(zip(self.pad_lo, self.pad_hi)))
