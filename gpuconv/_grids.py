"""The problem grids the dispatcher is calibrated on and judged on.

:func:`calibration` is what ``gpuconv tune`` times to fit the cost constants; :func:`holdout` is a
disjoint grid (other sizes, other kernel lengths, other aspect ratios, other channel counts) that
no tuning sees, on which benchmark reports state the dispatcher's regret: the time of the auto
choice over the time of the fastest gpuconv algorithm.  Both cover 1-D, 2-D and 3-D, single and
double precision, single-channel filtering and multi-channel (CNN) layers.  The GPU grids are the
same shapes scaled up so that launches do not dominate.
"""

from __future__ import annotations

import numpy as np

from ._spec import ConvSpec

F32, F64, C64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.complex64)


def label(spec: ConvSpec) -> str:
    """A short name of a canonical problem for tables and logs.

    >>> label(ConvSpec(in_shape=(384, 384), kernel_shape=(13, 13)))
    '2-D 384x384 * 13x13 float64'
    """
    dims, ks = "x".join(map(str, spec.in_shape)), "x".join(map(str, spec.kernel_shape))
    s = f"{spec.ndim}-D {dims} * {ks} {spec.dtype.name}"
    if spec.batch > 1 or spec.c_in > 1 or spec.c_out > 1:
        s += f" b{spec.batch} {spec.c_in}->{spec.c_out}"
    if spec.groups > 1:
        s += f" g{spec.groups}"
    if any(v > 1 for v in spec.stride):
        s += f" /{'x'.join(map(str, spec.stride))}"
    return s


def random_operand(rng, shape, dtype) -> np.ndarray:
    """Standard normal values of ``dtype`` (both parts for complex): never all zeros."""
    dtype = np.dtype(dtype)
    a = rng.standard_normal(shape)
    if dtype.kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _same(shape, k, dt, **kw) -> ConvSpec:
    ks = (k,) * len(shape) if isinstance(k, int) else tuple(k)
    return ConvSpec(
        in_shape=tuple(shape),
        kernel_shape=ks,
        pad_lo=tuple(v // 2 for v in ks),
        pad_hi=tuple((v - 1) // 2 for v in ks),
        flip=True,
        dtype=dt,
        **kw,
    )


def _full1(n, k, dt) -> ConvSpec:
    return ConvSpec(
        in_shape=(n,), kernel_shape=(k,), pad_lo=k - 1, pad_hi=k - 1, flip=True, dtype=dt
    )


def _layer(n, c_in, c_out, hw, k, stride=1, groups=1, dt=F32) -> ConvSpec:
    return ConvSpec(
        in_shape=(hw, hw),
        kernel_shape=(k, k),
        batch=n,
        c_in=c_in,
        c_out=c_out,
        groups=groups,
        stride=stride,
        pad_lo=k // 2,
        pad_hi=k // 2,
        dtype=dt,
    )


def calibration(device: str = "cpu") -> list[ConvSpec]:
    """Problems ``gpuconv tune`` fits the cost constants on (about a minute on 2 CPU cores)."""
    big = device == "cuda"
    s = 4 if big else 1
    grid = [_same((256 * s, 256 * s), k, dt) for k in (3, 5, 9, 17, 33) for dt in (F32, F64)]
    grid += [_same((1024 * s, 1024 * s), k, dt) for k in (3, 5, 9, 17, 33) for dt in (F32, F64)]
    grid += [_same((2048 * s, 2048 * s), k, F32) for k in (7, 15, 31)]
    grid += [
        _full1(n * s, k, dt) for n in (10_000, 1_000_000) for k in (8, 64, 512) for dt in (F32, F64)
    ]
    grid += [_same((64 * s,) * 3, k, F32) for k in (3, 5, 9)]
    grid += [_same((80 * s, 80 * s, 40 * s), k, dt) for k in (6, 8) for dt in (F32, F64)]
    # tiny problems pin down each algorithm's fixed cost per call
    grid += [_same((16, 16), 3, F64), _full1(64, 3, F64), _same((8, 8, 8), 3, F32)]
    grid += [_same((512 * s, 512 * s), k, C64) for k in (5, 21)]
    grid += [_layer(8 * s, 64, 64, 56, 3), _layer(8 * s, 128, 128, 28, 3)]
    grid += [_layer(8 * s, 64, 64, 56, 3, groups=64), _layer(4 * s, 32, 32, 112, 5, stride=2)]
    return grid


def calibration_rank1(device: str = "cpu") -> list[ConvSpec]:
    """Problems ``gpuconv tune`` times with a rank-1 (separable) kernel, so that the separable
    algorithm is calibrated too."""
    s = 4 if device == "cuda" else 1
    return [
        _same((16, 16), 3, F64),
        _same((1024 * s, 1024 * s), 15, F32),
        _same((1024 * s, 1024 * s), 31, F64),
        _same((2048 * s, 2048 * s), 9, F32),
        _same((128 * s,) * 3, 9, F32),
    ]


def calibration_ops(device: str = "cpu") -> list[tuple[ConvSpec, str]]:
    """(problem, op) pairs ``gpuconv tune`` times the backward passes on."""
    s = 4 if device == "cuda" else 1
    layers = [
        _layer(8 * s, 64, 64, 56, 3),
        _layer(8 * s, 128, 128, 28, 3),
        _layer(8 * s, 64, 64, 56, 3, groups=64),
        _layer(4 * s, 32, 32, 112, 5, stride=2),
        _layer(8 * s, 256, 64, 14, 1),
    ]
    return [(layer, op) for layer in layers for op in ("backward_data", "backward_weight")]


def holdout(device: str = "cpu") -> list[ConvSpec]:
    """Problems no tuning sees, for the regret figure (about a minute on 2 CPU cores)."""
    big = device == "cuda"
    s = 4 if big else 1
    grid = [_same((384 * s, 384 * s), k, dt) for k in (4, 13, 25) for dt in (F32, F64)]
    grid += [_same((768 * s, 1536 * s), k, F32) for k in (6, 11, 21, 41)]
    grid += [_same((1536 * s, 1536 * s), k, F64) for k in (3, 19, 27)]
    grid += [_same((3000 * s, 500 * s), k, F32) for k in (5, 23)]
    grid += [_same((1200 * s, 1200 * s), (3, 45), F32), _same((1200 * s, 1200 * s), (45, 3), F32)]
    grid += [_full1(n * s, k, dt) for n, k, dt in [
        (50_000, 16, F32), (50_000, 250, F64), (300_000, 100, F32), (300_000, 1000, F32),
        (3_000_000, 40, F32), (3_000_000, 300, F64), (2_000_000, 2000, F32),
    ]]  # fmt: skip
    grid += [_same((48 * s,) * 3, k, F32) for k in (4, 7)]
    grid += [_same((96 * s, 96 * s, 32 * s), k, F64) for k in (3, 11)]
    grid += [_same((700 * s, 700 * s), k, C64) for k in (7, 31)]
    grid += [
        _layer(4 * s, 96, 96, 40, 3),
        _layer(4 * s, 48, 160, 20, 3, stride=2),
        _layer(4 * s, 256, 64, 14, 1),
        _layer(2 * s, 3, 48, 160, 7, stride=2),
        _layer(4 * s, 96, 96, 40, 3, groups=96),
        _layer(4 * s, 16, 16, 64, 9),
    ]
    return grid
