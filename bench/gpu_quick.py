"""Quick GPU benchmark: 4096 x 4096 float32 'same' correlation with k x k kernels.

Every gpuconv GPU algorithm (and the dispatcher's choice) beside cupyx.scipy.signal.convolve2d, cupyx.scipy.ndimage.convolve,
cupyx.scipy.signal.fftconvolve and torch conv2d (when importable).  Each result is checked
against gpuconv's direct kernel (itself checked against a float64 FFT reference) before anything
is timed; timing uses CUDA events, the median of 10 runs after warm-up.  Prints one table (ms) and
each time over the memory floor (read the image once, write the output once).

    PYTHONPATH=. python3 bench/gpu_quick.py [--n 4096] [--ks 3,5,7,11,15,31] [--repeat 10]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--ks", default="3,5,7,11,15,31")
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args(argv)

    import cupy as cp

    from gpuconv import dispatch
    from gpuconv._spec import ConvSpec
    from gpuconv.cuda import direct, fft, im2col, implicit_gemm, overlap_add

    n = args.n
    ks = [int(k) for k in args.ks.split(",")]
    rng = np.random.default_rng(1)
    x = cp.asarray(rng.standard_normal((n, n)).astype(np.float32))
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    print(f"device: {props['name'].decode()}, CuPy {cp.__version__}, {n}x{n} float32 'same'")

    # the copy ceiling (bytes read + written), measured here
    bw = copy_bandwidth(args.repeat)
    floor_ms = 2 * n * n * 4 / bw * 1e3
    print(f"device-to-device copy: {bw / 1e9:.0f} GB/s -> memory floor {floor_ms:.3f} ms")

    try:
        import cupyx.scipy.ndimage as cndi
        import cupyx.scipy.signal as csig
    except ImportError:
        csig = cndi = None
    try:
        import torch

        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        torch = None

    rows = []
    failures = []
    for k in ks:
        w = cp.asarray(rng.standard_normal((k, k)).astype(np.float32))
        spec = ConvSpec(in_shape=(n, n), kernel_shape=(k, k), pad_lo=k // 2, pad_hi=(k - 1) // 2,
                        flip=True, dtype=np.float32)  # fmt: skip
        x4, w4 = x[None, None], w[None, None]
        cands = {}
        for name, mod in (("gpuconv.direct", direct), ("gpuconv.fft", fft),
                          ("gpuconv.im2col", im2col), ("gpuconv.implicit_gemm", implicit_gemm),
                          ("gpuconv.overlap_add", overlap_add)):  # fmt: skip
            if mod.supports(spec) is None:
                cands[name] = lambda mod=mod: mod.run(spec, x4, w4)[0, 0]
        choice = dispatch.choose(spec, w4, device="cuda").algorithm
        cands[f"auto ({choice})"] = lambda: dispatch.execute(spec, x4, w4, device="cuda")[0, 0]
        if csig is not None:
            if k <= 15:
                cands["cupyx convolve2d"] = lambda: csig.convolve2d(x, w, mode="same")
            cands["cupyx ndimage"] = lambda: cndi.convolve(x, w, mode="constant")
            cands["cupyx fftconvolve"] = lambda: csig.fftconvolve(x, w, mode="same")
        if torch is not None:
            tx = torch.as_tensor(x4, device="cuda")
            tw = torch.as_tensor(w4, device="cuda").flip(-1, -2).contiguous()
            pad = (k // 2, (k - 1) // 2)

            def torch_conv(tx=tx, tw=tw, pad=pad):
                if pad[0] == pad[1]:
                    return torch.nn.functional.conv2d(tx, tw, padding=pad[0])
                t = torch.nn.functional.pad(tx, (pad[0], pad[1], pad[0], pad[1]))
                return torch.nn.functional.conv2d(t, tw)

            cands["torch conv2d"] = torch_conv

        ref = cp.asnumpy(direct.run(spec, x4, w4)[0, 0]).astype(np.float64)
        if k <= 7:  # spot-check the reference itself in float64
            xs = cp.asnumpy(x[:64, :64]).astype(np.float64)
            ws = cp.asnumpy(w).astype(np.float64)
            sub = ConvSpec(in_shape=(64, 64), kernel_shape=(k, k), pad_lo=k // 2,
                           pad_hi=(k - 1) // 2, flip=True)  # fmt: skip
            from gpuconv.cpu import fft as cfft

            exact = cfft.run(sub, xs[None, None], ws[None, None])[0, 0]
            inner = slice(0, 64 - k)
            err = np.abs(exact[inner, inner] - ref[inner, inner]).max()
            assert err < 1e-3 * np.abs(exact).max(), f"direct k={k} wrong by {err}"
        scale = np.abs(ref).max()
        row = {"k": k}
        for name, fn in cands.items():
            got = fn()
            got = got.detach().cpu().numpy() if hasattr(got, "detach") else cp.asnumpy(got)
            got = np.asarray(got).reshape(ref.shape)
            err = float(np.abs(got - ref).max() / scale)
            if not err < 1e-4:
                failures.append(f"k={k} {name}: max relative error {err:.2e}")
                row[name] = None
                continue
            row[name] = time_ms(fn, args.repeat)
        rows.append(row)

    names = []
    for r in rows:
        names += [c for c in r if c != "k" and c not in names]
    head = f"{'k':>3} " + " ".join(f"{c:>18}" for c in names)
    print(head)
    print("-" * len(head))
    for r in rows:
        cells = []
        for c in names:
            t = r.get(c)
            cells.append(f"{'-' if t is None else f'{t:.3f} ({t / floor_ms:.1f}x)':>18}")
        print(f"{r['k']:>3} " + " ".join(cells))
    print(
        f"(ms, median of {args.repeat} after warm-up, CUDA events; (Nx) = over the memory "
        f"floor of {floor_ms:.3f} ms)"
    )
    for f in failures:
        print(f"WRONG RESULT: {f}", file=sys.stderr)
    return 1 if failures else 0


def copy_bandwidth(repeat: int) -> float:
    """Bytes per second of a 256 MiB device-to-device copy, counting bytes read + written."""
    import cupy as cp

    src = cp.empty(1 << 28, dtype=cp.uint8)
    dst = cp.empty_like(src)
    t = time_ms(lambda: dst.__setitem__(Ellipsis, src), repeat)
    return 2 * src.nbytes / (t * 1e-3)


def time_ms(fn, repeat: int) -> float:
    """Median milliseconds of ``fn()`` over ``repeat`` runs after two warm-ups (CUDA events)."""
    import cupy as cp

    for _ in range(2):
        fn()
    cp.cuda.Device().synchronize()
    times = []
    for _ in range(repeat):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return float(np.median(times))


if __name__ == "__main__":
    sys.exit(main())
