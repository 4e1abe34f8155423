"""The direct algorithm's fast path for depthwise problems (one input channel per group).

A depthwise layer (``groups == c_in``, ``c_out = m * c_in``) does 1 multiply-add per tap and
output, so it is bound by memory, not arithmetic; the general direct core (tiles of 8 rows, taps
fused 8 at a time) spends its time on per-tile bookkeeping and on rows too short for its vector
loops.  Here the unit of work is one ``(n, ci)`` plane:

1. the plane is copied, zero-padded, into a per-thread scratch ``P`` (``Dp x Hp x Wp``, small
   enough for L1/L2 at CNN sizes), so no tap ever tests a bound;
2. for each of its ``m`` output planes, with unit stride the whole output plane is computed in
   *padded row pitch*: ``acc[t] += w[j] * P[t + off(j)]`` over one flat run of
   ``t < (OD-1)*Hp*Wp + (OH-1)*Wp + OW`` (one long vectorised loop per tap instead of short
   rows; the ``Wp - OW`` garbage columns per row are dropped when copying out); with a stride,
   row by row (``acc[ow] += w * P[base + ow*sw]``).

Every plane is read once and written once, so the whole layer streams ``x`` and ``y`` once.
Also :func:`run_backward_weight`: ``dw[co, j] = sum_n sum_p P_n[p*s + j*d] * dy[n, co, p]``, one
thread per output channel (race-free), the batch summed inside.  Accumulation is in the
problem's dtype, taps in a fixed order (``contract`` only), as in :mod:`gpuconv.cpu.direct`.
"""

from __future__ import annotations

import numpy as np

from gpuconv._spec import ConvSpec

__all__ = ["supports", "run", "supports_backward_weight", "run_backward_weight"]

#: largest padded plane (elements) the per-thread scratch may hold.
MAX_PLANE = 1 << 22

_cores = None


def supports(spec: ConvSpec) -> str | None:
    """None for a depthwise problem of 1 to 3 spatial axes, else why not."""
    if spec.groups != spec.c_in:
        return f"not depthwise (groups {spec.groups} != c_in {spec.c_in})"
    if spec.batch * spec.c_in < 4:
        return "fewer than 4 planes: the general direct core parallelises within a plane"
    if spec.ndim > 3:
        return f"depthwise fast path supports 1 to 3 spatial axes, got {spec.ndim}"
    if int(np.prod(spec.padded_shape)) > MAX_PLANE:
        return f"padded plane of {int(np.prod(spec.padded_shape))} elements exceeds {MAX_PLANE}"
    return None


def supports_backward_weight(spec: ConvSpec) -> str | None:
    return supports(spec)


def _get_cores():
    global _cores
    if _cores is None:
        _cores = _build()
    return _cores


def _build():
    from numba import njit, prange, uintp

    @njit(inline="always")
    def stage(xf, xbase, P, xd, xh, xw, pd, ph, pw, Dp, Hp, Wp):
        zero = P.dtype.type(0)
        for i in range(Dp * Hp * Wp):
            P[uintp(i)] = zero
        for a in range(xd):
            for b in range(xh):
                src = xbase + (a * xh + b) * xw
                dst = ((a + pd) * Hp + b + ph) * Wp + pw
                for m in range(xw):
                    P[uintp(dst + m)] = xf[uintp(src + m)]

    @njit(parallel=True, cache=True, fastmath={"contract"}, nogil=True)
    def forward(x, w, y, sd, sh, sw, dd, dh, dw, pd, ph, pw, Dp, Hp, Wp):
        nb, cin, xd, xh, xw = x.shape
        cout, _, kd_n, kh_n, kw_n = w.shape
        _, _, od_n, oh_n, ow_n = y.shape
        mult = cout // cin
        xf = x.reshape(-1)
        wf = w.reshape(-1)
        yf = y.reshape(-1)
        HWp = Hp * Wp
        unit = sd == 1 and sh == 1 and sw == 1
        run = (od_n - 1) * HWp + (oh_n - 1) * Wp + ow_n
        zero = y.dtype.type(0)
        for plane in prange(nb * cin):
            n = plane // cin
            ci = plane - n * cin
            P = np.empty(Dp * HWp, dtype=y.dtype)
            acc = np.empty(run if unit else ow_n, dtype=y.dtype)
            stage(xf, plane * xd * xh * xw, P, xd, xh, xw, pd, ph, pw, Dp, Hp, Wp)
            for k in range(mult):
                co = ci * mult + k
                wb = co * kd_n * kh_n * kw_n
                yb = (n * cout + co) * od_n * oh_n * ow_n
                if unit:
                    for t in range(run):
                        acc[uintp(t)] = zero
                    for jd in range(kd_n):
                        for jh in range(kh_n):
                            for jw in range(kw_n):
                                wv = wf[wb + (jd * kh_n + jh) * kw_n + jw]
                                off = jd * dd * HWp + jh * dh * Wp + jw * dw
                                for t in range(run):
                                    acc[uintp(t)] += wv * P[uintp(t + off)]
                    for a in range(od_n):
                        for b in range(oh_n):
                            src = a * HWp + b * Wp
                            dst = yb + (a * oh_n + b) * ow_n
                            for m in range(ow_n):
                                yf[uintp(dst + m)] = acc[uintp(src + m)]
                else:
                    for a in range(od_n):
                        for b in range(oh_n):
                            for m in range(ow_n):
                                acc[uintp(m)] = zero
                            for jd in range(kd_n):
                                for jh in range(kh_n):
                                    rb = (a * sd + jd * dd) * HWp + (b * sh + jh * dh) * Wp
                                    for jw in range(kw_n):
                                        wv = wf[wb + (jd * kh_n + jh) * kw_n + jw]
                                        base = rb + jw * dw
                                        for m in range(ow_n):
                                            acc[uintp(m)] += wv * P[uintp(base + m * sw)]
                            dst = yb + (a * oh_n + b) * ow_n
                            for m in range(ow_n):
                                yf[uintp(dst + m)] = acc[uintp(m)]

    @njit(parallel=True, cache=True, fastmath={"contract"}, nogil=True)
    def backward_weight(x, dy, dwt, sd, sh, sw, dd, dh, dw, pd, ph, pw, Dp, Hp, Wp):
        nb, cin, xd, xh, xw = x.shape
        cout, _, kd_n, kh_n, kw_n = dwt.shape
        _, _, od_n, oh_n, ow_n = dy.shape
        mult = cout // cin
        xf = x.reshape(-1)
        dyf = dy.reshape(-1)
        dwf = dwt.reshape(-1)
        HWp = Hp * Wp
        ktaps = kd_n * kh_n * kw_n
        zero = dwt.dtype.type(0)
        for ci in prange(cin):
            P = np.empty(Dp * HWp, dtype=dwt.dtype)
            # per (output channel, tap) a vector of partial sums over the output columns
            accs = np.empty(mult * ktaps * ow_n, dtype=dwt.dtype)
            for i in range(mult * ktaps * ow_n):
                accs[uintp(i)] = zero
            for n in range(nb):
                stage(xf, (n * cin + ci) * xd * xh * xw, P, xd, xh, xw, pd, ph, pw, Dp, Hp, Wp)
                for k in range(mult):
                    co = ci * mult + k
                    yb = (n * cout + co) * od_n * oh_n * ow_n
                    for a in range(od_n):
                        for b in range(oh_n):
                            src = yb + (a * oh_n + b) * ow_n
                            for jd in range(kd_n):
                                for jh in range(kh_n):
                                    rb = (a * sd + jd * dd) * HWp + (b * sh + jh * dh) * Wp
                                    for jw in range(kw_n):
                                        base = rb + jw * dw
                                        ab = ((k * kd_n + jd) * kh_n + jh) * kw_n + jw
                                        ab *= ow_n
                                        if sw == 1:
                                            for m in range(ow_n):
                                                accs[uintp(ab + m)] += (
                                                    P[uintp(base + m)] * dyf[uintp(src + m)]
                                                )
                                        else:
                                            for m in range(ow_n):
                                                accs[uintp(ab + m)] += (
                                                    P[uintp(base + m * sw)] * dyf[uintp(src + m)]
                                                )
            for k in range(mult):
                co = ci * mult + k
                for t in range(ktaps):
                    s = zero
                    ab = (k * ktaps + t) * ow_n
                    for m in range(ow_n):
                        s += accs[uintp(ab + m)]
                    dwf[co * ktaps + t] = s

    return forward, backward_weight


def _as5(a: np.ndarray, nd: int) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:
        a = a.copy()
    return a.reshape(a.shape[:2] + (1,) * (3 - nd) + a.shape[2:])


def _geometry(spec: ConvSpec):
    lead = 3 - spec.ndim
    st = (1,) * lead + spec.stride
    dl = (1,) * lead + spec.dilation
    pl = (0,) * lead + spec.pad_lo
    padded = (1,) * lead + spec.padded_shape
    return (*st, *dl, *pl, *padded)


def run(spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``y`` of a depthwise canonical problem (see :func:`supports`)."""
    reason = supports(spec)
    if reason is not None:
        raise ValueError(reason)
    dt = spec.dtype
    x = np.asarray(x).astype(dt, copy=False)
    w = spec.kernel_for_correlation(np.asarray(w).astype(dt, copy=False))
    if x.shape != spec.x_shape or w.shape != spec.w_shape:
        raise ValueError(f"x {x.shape} / w {w.shape} do not match {spec.x_shape} / {spec.w_shape}")
    if dt.kind in "fc" and not np.isfinite(w).all():
        # 0 * inf in the padding must give NaN: the general core handles that case
        from gpuconv.cpu import direct

        return direct.run(spec, x, w if not spec.flip else spec.kernel_for_correlation(w))
    y = np.empty(spec.y_shape, dtype=dt)
    fwd, _ = _get_cores()
    nd = spec.ndim
    fwd(_as5(x, nd), _as5(w, nd), _as5(y, nd), *_geometry(spec))
    return y


def run_backward_weight(spec: ConvSpec, x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``dw`` of a depthwise canonical problem from ``x`` and ``dy``."""
    reason = supports(spec)
    if reason is not None:
        raise ValueError(reason)
    dt = spec.dtype
    x = np.asarray(x).astype(dt, copy=False)
    dy = np.asarray(dy).astype(dt, copy=False)
    if x.shape != spec.x_shape or dy.shape != spec.y_shape:
        raise ValueError(
            f"x {x.shape} / dy {dy.shape} do not match {spec.x_shape} / {spec.y_shape}"
        )
    dwt = np.empty(spec.w_shape, dtype=dt)
    _, bwd = _get_cores()
    nd = spec.ndim
    bwd(_as5(x, nd), _as5(dy, nd), _as5(dwt, nd), *_geometry(spec))
    return np.ascontiguousarray(spec.kernel_for_correlation(dwt))
