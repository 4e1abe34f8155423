"""Benchmark: gpuconv.cpu.direct vs cv2.filter2D vs a plain numba prange loop.

2048 x 2048 float32 image, one channel, scipy 'same'-mode convolution (flip, pad k//2 on both
sides) with k x k kernels.  Every candidate's result is checked against the others before
timing; times are the median (and min) of ``--repeat`` runs after a warm-up, in milliseconds.

    PYTHONPATH=. python bench/direct_cpu.py [--repeat 9] [--size 2048] [--ks 3,5,7,9,11,15]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numba import njit, prange

from gpuconv._spec import ConvSpec
from gpuconv.cpu import direct

try:
    import cv2
except ImportError:  # pragma: no cover
    cv2 = None


@njit(parallel=True, cache=True)
def plain_loop(img, ker):
    """The textbook loop: one output pixel at a time, bounds-checked taps (correlation)."""
    h, w = img.shape
    kh, kw = ker.shape
    ph, pw = kh // 2, kw // 2
    out = np.empty_like(img)
    for i in prange(h):
        for j in range(w):
            acc = img.dtype.type(0)
            for a in range(kh):
                ii = i + a - ph
                if ii < 0 or ii >= h:
                    continue
                for b in range(kw):
                    jj = j + b - pw
                    if jj >= 0 and jj < w:
                        acc += ker[a, b] * img[ii, jj]
            out[i, j] = acc
    return out


def _time(fn, repeat):
    fn()  # warm-up
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return np.median(ts) * 1e3, np.min(ts) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--ks", default="3,5,7,9,11,15")
    ap.add_argument("--no-plain", action="store_true", help="skip the (slow) plain loop")
    args = ap.parse_args()
    ks = [int(v) for v in args.ks.split(",")]
    rng = np.random.default_rng(0)
    n = args.size
    img = rng.standard_normal((n, n)).astype(np.float32)
    rows = []
    for k in ks:
        ker = rng.standard_normal((k, k)).astype(np.float32)
        p = k // 2
        spec = ConvSpec(
            in_shape=(n, n),
            kernel_shape=(k, k),
            pad_lo=(p, p),
            pad_hi=(k - 1 - p, k - 1 - p),
            flip=True,
            dtype=np.float32,
        )
        corr = np.ascontiguousarray(ker[::-1, ::-1])  # filter2D and the loop correlate
        cands = {"direct": lambda: direct.run(spec, img[None, None], ker[None, None])[0, 0]}
        if cv2 is not None:
            # anchor at the centre: for even k OpenCV's anchor k//2 matches pad_lo = k//2 of the
            # flipped kernel only for odd k; the benchmark uses odd k
            cands["opencv"] = lambda: cv2.filter2D(img, -1, corr, borderType=cv2.BORDER_CONSTANT)
        if not args.no_plain:
            cands["plain"] = lambda: plain_loop(img, corr)
        results = {name: fn() for name, fn in cands.items()}
        ref = results["direct"]
        scale = float(np.abs(ker).sum()) * float(np.abs(img).max())
        for name, r in results.items():
            err = float(np.abs(r - ref).max())
            assert err <= 1e-5 * scale, f"k={k}: {name} differs from direct by {err}"
        times = {name: _time(fn, args.repeat) for name, fn in cands.items()}
        rows.append((k, times))
        line = f"k={k:3d}  " + "  ".join(
            f"{name}: {med:7.2f} ms (min {mn:6.2f})" for name, (med, mn) in times.items()
        )
        if "opencv" in times:
            line += f"  direct/opencv = {times['direct'][0] / times['opencv'][0]:.2f}"
        print(line, flush=True)
    names = list(rows[0][1])
    print()
    print("| k | " + " | ".join(f"{nm} ms (median)" for nm in names) + " |")
    print("|---|" + "---|" * len(names))
    for k, times in rows:
        print(f"| {k} | " + " | ".join(f"{times[nm][0]:.2f}" for nm in names) + " |")


if __name__ == "__main__":
    main()
