"""Time gpuconv.cpu.fft / gpuconv.cpu.overlap_add beside scipy.signal.fftconvolve / oaconvolve.

2048x2048 float32 image, k x k float32 kernel, scipy 'same' convolution, which in canonical form
is ``flip=True, pad_lo=k-1-(k-1)//2, pad_hi=(k-1)//2`` per axis (checked against scipy below).
Every method is checked against scipy before timing; timings are the median of ``--repeats``
runs after a warm-up, the methods interleaved round-robin so machine noise hits all alike.

    PYTHONPATH=. python bench/fft_cpu.py [--n 2048] [--ks 3,7,15,31,63] [--repeats 7] [--workers 1]

fftconvolve/oaconvolve always run single-threaded (scipy.signal has no workers argument).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial

import numpy as np
import scipy.signal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from gpuconv._spec import ConvSpec  # noqa: E402
from gpuconv.cpu import fft as gfft  # noqa: E402
from gpuconv.cpu import overlap_add as goa  # noqa: E402


def same_spec(n: int, k: int, dtype=np.float32) -> ConvSpec:
    lo, hi = k - 1 - (k - 1) // 2, (k - 1) // 2
    return ConvSpec(
        in_shape=(n, n),
        kernel_shape=(k, k),
        pad_lo=(lo, lo),
        pad_hi=(hi, hi),
        flip=True,
        dtype=dtype,
    )


def first(fn, spec, x, w):
    """``fn(spec, x, w)[0, 0]``: the single output image."""
    return fn(spec, x, w)[0, 0]


def nowrap(spec, x, w):
    """gpuconv.cpu.fft with the wrapped short transforms switched off (safe lengths only)."""
    old, gfft.WRAP_MODE = gfft.WRAP_MODE, "never"
    try:
        return gfft.run(spec, x, w)
    finally:
        gfft.WRAP_MODE = old


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--ks", default="3,7,15,31,63")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument(
        "--workers",
        type=int,
        default=None,
        help="scipy.fft threads for gpuconv (default: gpuconv.cpu.fft.WORKERS)",
    )
    args = ap.parse_args(argv)
    if args.workers:
        gfft.WORKERS = args.workers
    n = args.n
    rng = np.random.default_rng(1)
    img = rng.standard_normal((n, n)).astype(np.float32)
    print(
        f"{n}x{n} float32 'same', scipy.fft workers={gfft.WORKERS}, "
        f"median and min of {args.repeats} (ms); ratio = time / fftconvolve"
    )
    hdr = (
        f"{'k':>3}     {'fftconv':>9} {'oaconvolve':>10} {'gpuconv.fft':>10} {'ratio':>6} "
        f"{'gpuconv.oa':>10} {'ratio':>6} {'fft-nowrap':>10} {'ratio':>6}  L(fft)"
    )
    print(hdr)
    for k in map(int, args.ks.split(",")):
        kern = rng.standard_normal((k, k)).astype(np.float32)
        spec = same_spec(n, k)
        x, w = img[None, None], kern[None, None]
        methods = {
            "fftconvolve": partial(scipy.signal.fftconvolve, img, kern, mode="same"),
            "oaconvolve": partial(scipy.signal.oaconvolve, img, kern, mode="same"),
            "fft": partial(first, gfft.run, spec, x, w),
            "fft-nowrap": partial(first, nowrap, spec, x, w),
        }
        if goa.supports(spec) is None:
            methods["oa"] = partial(first, goa.run, spec, x, w)
        ref = scipy.signal.fftconvolve(img.astype(np.float64), kern.astype(np.float64), mode="same")
        scale = np.abs(img).max() * np.abs(kern).sum()
        for name, f in methods.items():
            got = f()
            assert got.shape == ref.shape, (name, got.shape)
            if name in ("fft", "oa", "fft-nowrap"):
                assert got.dtype == np.float32, (name, got.dtype)
            err = np.abs(got - ref).max() / scale
            assert err < 1e-5, (name, k, err)
        times = {m: [] for m in methods}
        for _ in range(args.repeats):
            for name, f in methods.items():
                t = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t)
        for label, red in (("med", np.median), ("min", np.min)):
            t = {m: 1e3 * float(red(v)) for m, v in times.items()}
            base = t["fftconvolve"]

            def col(m, t=t, base=base):
                return f"{t[m]:10.1f} {t[m] / base:6.2f}" if m in t else f"{'-':>10} {'-':>6}"

            print(
                f"{k:3d} {label} {base:9.1f} {t['oaconvolve']:10.1f} {col('fft')} {col('oa')} "
                f"{col('fft-nowrap')}  {gfft.plan_lengths(spec, True) if label == 'med' else ''}",
                flush=True,
            )


if __name__ == "__main__":
    main()
