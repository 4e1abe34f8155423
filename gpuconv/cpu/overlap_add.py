"""Blocked FFT convolution of the canonical problem for a large input and a medium kernel.

Despite the module name this is **overlap-save** (the output blocks are disjoint, so no
additions between blocks are needed; the input blocks overlap by ``reach - 1``):

* Per spatial axis a block transform length ``Lb`` is chosen from the kernel reach starting
  from ``scipy.signal._signaltools._calc_oa_lens``'s optimum (minimising
  ``Lb/(Lb-K) * log2(2 Lb)`` with ``K = reach - 1``, via the Lambert W function), raised to at
  least :data:`MIN_BLOCK` and moved to the cheapest fast length per output (see
  :func:`_block_length`); each block yields ``M = Lb - reach + 1`` outputs.  An axis whose whole
  output fits in one block is not split.
* The padded input (padding materialised once, plus zeros up to ``nb*M + reach - 1``) is viewed
  as a stack of overlapping blocks (a strided view, no copy) and all blocks of a chunk go through
  one batched ``rfft``/``fft`` call per axis.
* The kernel spectrum is computed once per kernel at the block length, with the taps placed
  wrapped at ``(-d*u) mod Lb`` so the first ``M`` circular outputs of a block are its valid ones.
* Channels/groups are mixed per frequency as in :mod:`gpuconv.cpu.fft`; one inverse transform per
  output channel and block; the kept ``M`` outputs of every block are interleaved into ``y``.

Same dtype rules as :mod:`gpuconv.cpu.fft` (float32 stays single precision; int64 via float64
and rounding).  Stride: computed at stride 1 and subsampled.  :func:`supports` declines problems
where one block would cover the whole input on every axis (plain FFT convolution is then better).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided
from scipy.special import lambertw

from gpuconv import _threads
from gpuconv._spec import ConvSpec
from gpuconv.cpu import fft as _fft

#: smallest block transform length: below it the per-line overheads of the batched transforms
#: and the extra passes (copies, products) dominate (2048x2048 float32, k=3: block 8 from the
#: formula 72 ms, block 32..128 41-47 ms).
MIN_BLOCK: int = 128


def _block_length(reach: int, full: int, real: bool) -> int | None:
    """Block transform length for one axis, or None when the axis should not be split.

    Start from scipy's ``_calc_oa_lens`` optimum ``N = -K W_{-1}(-1/(2eK))`` (``K = reach - 1``),
    at least :data:`MIN_BLOCK`, and take the fast length in ``[N, 2N]`` with the lowest
    estimated cost per output, ``cost(Lb) / (Lb - K)``.
    """
    K = reach - 1
    if K < 1:
        return None
    opt = max(-K * lambertw(-1 / (2 * math.e * K), k=-1).real, MIN_BLOCK, K + 1)
    best, c = None, math.ceil(opt)
    while c <= 2 * opt:
        c = _fft.fast_length(c, real)
        if c > 2 * opt and best is not None:
            break
        score = _fft._len_cost(c) / (c - K)
        if best is None or score < best[0]:
            best = (score, c)
        c += 1
    Lb = best[1]
    M = Lb - K
    if math.ceil(full / M) <= 1:
        return None
    # the unsplit transform would be about full + K long: split only if clearly larger
    if Lb >= (full + K) * 0.75:
        return None
    return Lb


def _plan(spec: ConvSpec, real: bool):
    """Per axis: (Lb, M, nb) where nb == 1 means one block covering the axis."""
    plan = []
    nd = spec.ndim
    for a in range(nd):
        R = spec.reach[a]
        full = spec.padded_shape[a] - R + 1
        ra = real and a == nd - 1
        Lb = _block_length(R, full, ra)
        if Lb is None:
            Lb = _fft.fast_length(full + R - 1, ra)
            plan.append((Lb, full, 1))
        else:
            M = Lb - R + 1
            plan.append((Lb, M, -(-full // M)))
    return plan


def supports(spec: ConvSpec) -> str | None:
    real = spec.dtype.kind != "c"
    if all(nb == 1 for _, _, nb in _plan(spec, real)):
        return "a single block covers the input on every axis (use fft)"
    return None


def run(spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    w = np.asarray(w)
    if x.shape != spec.x_shape or w.shape != spec.w_shape:
        raise ValueError(f"x {x.shape} / w {w.shape} do not match {spec.x_shape} / {spec.w_shape}")
    work = _fft._work_dtype(spec.dtype)
    real = work.kind == "f"
    nd = spec.ndim
    plan = _plan(spec, real)
    Lb = tuple(p[0] for p in plan)
    Ms = tuple(p[1] for p in plan)
    nbs = tuple(p[2] for p in plan)
    workers = _threads.budget() or _fft.WORKERS
    B, cin, cout = spec.batch, spec.c_in, spec.c_out

    # padded input, long enough for the last block: (nb - 1)*M + Lb on every axis (that is
    # nb*M + R - 1 on split axes; an unsplit axis may have Lb > M + R - 1)
    ext = tuple((nb - 1) * M + L for nb, M, L in zip(nbs, Ms, Lb, strict=False))
    xp = np.zeros((B, cin) + ext, dtype=work)
    xp[
        (slice(None), slice(None))
        + tuple(slice(lo, lo + n) for lo, n in zip(spec.pad_lo, spec.in_shape, strict=False))
    ] = x
    # blocks: (B, cin, nb_0..nb_{d-1}, Lb_0..Lb_{d-1}) strided view, inside xp on every axis
    if any((nb - 1) * M + L > e for nb, M, L, e in zip(nbs, Ms, Lb, xp.shape[2:], strict=False)):
        raise AssertionError("overlap-save block view would read past the padded input")
    st = xp.strides
    blocks = as_strided(
        xp,
        shape=(B, cin) + nbs + Lb,
        strides=st[:2] + tuple(M * s for M, s in zip(Ms, st[2:], strict=False)) + st[2:],
        writeable=False,
    )

    wt = spec.kernel_for_correlation(w).astype(work, copy=False)
    kaxes = tuple(range(2, 2 + nd))
    H = _fft._kernel_spectrum(wt, kaxes, Lb, (0,) * nd, spec.dilation, real, workers)
    fshape = H.shape[2:]
    F = math.prod(fshape)
    H = H.reshape(cout, cin // spec.groups, F)

    full = tuple(p - r + 1 for p, r in zip(spec.padded_shape, spec.reach, strict=False))
    y = np.empty(spec.y_shape, dtype=spec.dtype)
    baxes = tuple(range(2 + nd, 2 + 2 * nd))
    keeps = tuple(slice(0, M) for M in Ms)
    csize = np.dtype(H.dtype).itemsize
    # chunk over (batch item, block row along axis 0)
    per_row = (cin + 2 * cout) * F * csize * math.prod(nbs[1:])
    rows = _fft.batch_chunk(nbs[0], per_row)
    out_sel = tuple(slice(0, f, s) for f, s in zip(full, spec.stride, strict=False))
    for b in range(B) if rows < nbs[0] or B * per_row * nbs[0] > _fft.MEMORY_BUDGET else [None]:
        bsel = slice(None) if b is None else slice(b, b + 1)
        for r0 in range(0, nbs[0], rows):
            r1 = min(nbs[0], r0 + rows)
            blk = blocks[bsel, :, r0:r1]
            X = _fft._forward(blk, baxes, Lb, real, workers)
            nbatch = X.shape[0]
            nblk = math.prod(X.shape[2 : 2 + nd])
            Y = _mix_blocks(X, H, spec.groups, nbatch, cin, nblk, F)
            del X
            Y = Y.reshape((nbatch, cout) + (r1 - r0,) + nbs[1:] + fshape)
            yb = _fft._inverse(Y, baxes, Lb, keeps, real, workers)
            del Y
            # (nb, cout, nb_0.., M_0..) -> (nb, cout, nb_0*M_0, ...)
            perm = (0, 1) + tuple(v for a in range(nd) for v in (2 + a, 2 + nd + a))
            yb = yb.transpose(perm).reshape(
                (nbatch, cout, (r1 - r0) * Ms[0])
                + tuple(nb * M for nb, M in zip(nbs[1:], Ms[1:], strict=False))
            )
            # rows r0*M0 .. r1*M0 of the stride-1 output, then the strided selection
            s0 = spec.stride[0]
            first = -(-(r0 * Ms[0]) // s0) * s0  # first multiple of the stride in this chunk
            stop = min(r1 * Ms[0], full[0])
            if first >= stop:
                continue
            part = yb[
                (slice(None), slice(None), slice(first - r0 * Ms[0], stop - r0 * Ms[0], s0))
                + out_sel[1:]
            ]
            dst = (bsel, slice(None), slice(first // s0, first // s0 + part.shape[2]))
            if spec.dtype == np.int64:
                y[dst] = np.rint(part)
            else:
                y[dst] = part
    return y


def _mix_blocks(X, H, groups, nbatch, cin, nblk, F):
    return _fft._mix(X.reshape(nbatch, cin, nblk, F), H, groups)
