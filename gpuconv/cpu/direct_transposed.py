"""backward_data of the canonical problem by a direct, gather-form transposed kernel (numba).

For the canonical problem of :mod:`gpuconv._spec` this computes, for every input position ``q``::

    dx[n, g*Cig + c, q] = sum_{o < Cog} sum_{j : (q + pad_lo - j*dilation) % stride == 0}
                              dy[n, g*Cog + o, (q + pad_lo - j*dilation) // stride] * w~[g*Cog + o, c, j]

(only taps whose ``dy`` position exists contribute).  It is the transpose of the forward map in
``x`` (no conjugation; for real dtypes the gradient with respect to the input).  It never builds
a zero-inserted ``dy`` and never scatters: each ``dx`` row is owned by exactly one thread, so the
``prange`` over rows has no write races.

Method: the unit of work is one ``dx`` row ``(n, ci, qd, qh)``.  The row is split into ``sw``
*phases* (``qw = r + sw*m``); within a phase a column tap ``jw`` either never lands (its residue
``(jw*dw - pw) mod sw`` differs) or lands on the contiguous ``dy`` row slice
``dy[..., m + off]``, so every tap becomes one unit-stride multiply-add over a contiguous scratch
row (LLVM vectorises it, ``uintp`` indices avoid wrap-around checks).  Depth and row taps are
filtered the same way once per row.  Accumulation is in the problem's dtype in a fixed order.
"""

from __future__ import annotations

import numpy as np

from gpuconv._spec import ConvSpec
from gpuconv.cpu.direct import _as5

__all__ = ["supports_backward_data", "run_backward_data"]

#: rows are split into at most this many contiguous chunks (prange iterations).
NCHUNKS = 256
#: prange chunk size for numba's dynamic scheduling.
CHUNKSIZE = 4

_core = None


def supports_backward_data(spec: ConvSpec) -> str | None:
    """None if :func:`run_backward_data` handles ``spec`` (1 to 3 spatial axes), else why not."""
    if spec.ndim > 3:
        return f"direct transposed kernel supports 1 to 3 spatial axes, got {spec.ndim}"
    return None


def _get_core():
    global _core
    if _core is None:
        _core = _build_core()
    return _core


def _build_core():
    from numba import njit, prange, uintp

    @njit(parallel=True, cache=True, fastmath={"contract"}, nogil=True)
    def core(dy, w, dx, groups, sd, sh, sw, dd, dh, dw, pd, ph, pw, nchunks):
        nb, cin, xd, xh, xw = dx.shape
        cout, cig, kd_n, kh_n, kw_n = w.shape
        _, _, od_n, oh_n, ow_n = dy.shape
        cog = cout // groups
        total = nb * cin * xd * xh
        L = (xw + sw - 1) // sw  # longest phase
        dyf = dy.reshape(-1)
        wf = w.reshape(-1)
        dxf = dx.reshape(-1)
        zero = dx.dtype.type(0)
        nch = min(nchunks, total)
        for chunk in prange(nch):
            acc = np.empty(sw * L, dtype=dx.dtype)
            for item in range(chunk * total // nch, (chunk + 1) * total // nch):
                qh = item % xh
                rest = item // xh
                qd = rest % xd
                rest //= xd
                ci = rest % cin
                n = rest // cin
                g = ci // cig
                c = ci - g * cig
                for m in range(sw * L):
                    acc[uintp(m)] = zero
                for o in range(cog):
                    co = g * cog + o
                    for jd in range(kd_n):
                        td = qd + pd - jd * dd
                        if td < 0 or td % sd != 0:
                            continue
                        zd = td // sd
                        if zd >= od_n:
                            continue
                        for jh in range(kh_n):
                            th = qh + ph - jh * dh
                            if th < 0 or th % sh != 0:
                                continue
                            zh = th // sh
                            if zh >= oh_n:
                                continue
                            base = (((n * cout + co) * od_n + zd) * oh_n + zh) * ow_n
                            wbase = (((co * cig + c) * kd_n + jd) * kh_n + jh) * kw_n
                            for jw in range(kw_n):
                                e = jw * dw - pw
                                r = e % sw
                                if r >= xw:
                                    continue
                                off = (r - e) // sw  # dy column of phase element m is m + off
                                len_r = (xw - r + sw - 1) // sw
                                mlo = max(0, -off)
                                mhi = min(len_r, ow_n - off)
                                if mhi <= mlo:
                                    continue
                                wv = wf[wbase + jw]
                                ab = r * L
                                src = base + off
                                for m in range(mlo, mhi):
                                    acc[uintp(ab + m)] += wv * dyf[uintp(src + m)]
                rowbase = (((n * cin + ci) * xd + qd) * xh + qh) * xw
                if sw == 1:
                    for m in range(xw):
                        dxf[uintp(rowbase + m)] = acc[uintp(m)]
                else:
                    for r in range(min(sw, xw)):
                        len_r = (xw - r + sw - 1) // sw
                        for m in range(len_r):
                            dxf[uintp(rowbase + r + sw * m)] = acc[uintp(r * L + m)]

    return core


def run_backward_data(spec: ConvSpec, dy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``dx`` (shape ``spec.x_shape``, dtype ``spec.dtype``) from ``dy`` and ``w``."""
    reason = supports_backward_data(spec)
    if reason is not None:
        raise ValueError(reason)
    dt = spec.dtype
    dy = np.asarray(dy)
    w = np.asarray(w)
    if dy.shape != spec.y_shape or w.shape != spec.w_shape:
        raise ValueError(
            f"dy {dy.shape} / w {w.shape} do not match the spec {spec.y_shape} / {spec.w_shape}"
        )
    dy = dy.astype(dt, copy=False)
    w = spec.kernel_for_correlation(w.astype(dt, copy=False))
    nd = spec.ndim
    lead = 3 - nd
    st = (1,) * lead + spec.stride
    dl = (1,) * lead + spec.dilation
    pl = (0,) * lead + spec.pad_lo
    dx = np.empty(spec.x_shape, dtype=dt)
    core = _get_core()
    import numba

    old = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(CHUNKSIZE)
    try:
        core(_as5(dy, nd), _as5(w, nd), _as5(dx, nd), spec.groups, *st, *dl, *pl, NCHUNKS)
    finally:
        numba.set_parallel_chunksize(old)
    return dx
