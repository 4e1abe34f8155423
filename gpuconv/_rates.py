"""This machine's ceilings, measured: copy bandwidth, GEMM rate, FFT rate.

They are the floors benchmark reports divide by (a convolution cannot beat reading its input and
writing its output at the copy bandwidth, nor its multiply-adds at the GEMM rate) and the raw rates
``gpuconv tune`` starts the cost model from.  Each figure is the best of a few runs (a ceiling,
not a typical time) on random data, sized to leave the last-level cache (CPU) or to fill the device (GPU); together they take
about a second on a 2-core CPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from . import _memory
from ._timing import note_blas, time_on


@dataclass(frozen=True)
class Rates:
    """Measured ceilings of one device.

    ``copy_bytes_per_s`` counts bytes read plus bytes written; ``gemm_flops_*`` counts 2 FLOP per
    multiply-add; ``fft_nlogn_per_s_*`` counts ``n log2 n`` of real-to-complex transforms of
    length-``n`` (2-D, all cores) per second.
    """

    device: str
    copy_bytes_per_s: float
    gemm_flops_f32: float
    gemm_flops_f64: float
    fft_nlogn_per_s_f32: float
    fft_nlogn_per_s_f64: float

    def as_dict(self) -> dict:
        return asdict(self)

    def memory_floor(self, nbytes: float) -> float:
        """Seconds to move ``nbytes`` (read + written) at the copy bandwidth."""
        return nbytes / self.copy_bytes_per_s

    def arithmetic_floor(self, flops: float, dtype) -> float:
        """Seconds for ``flops`` real FLOP at the GEMM rate of ``dtype``'s precision."""
        single = np.dtype(dtype) in (np.float32, np.complex64)
        rate = self.gemm_flops_f32 if single else self.gemm_flops_f64
        return flops / rate


def _xp(device: str):
    if device == "cuda":
        from ._arrays import require_cupy

        return require_cupy()
    if device == "cpu":
        return np
    raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")


def measure(device: str = "cpu", repeat: int = 5) -> Rates:
    """Measure ``device``'s copy bandwidth, GEMM rate and FFT rate.

    >>> r = measure("cpu", repeat=1)  # doctest: +SKIP
    >>> r.copy_bytes_per_s > 1e9  # doctest: +SKIP
    True
    """
    xp = _xp(device)
    gpu = device == "cuda"
    if not gpu:
        # the allocator as the algorithms run with it: else each FFT output page-faults in
        _memory.configure()
    rng = np.random.default_rng(0)

    n_copy = (256 if gpu else 32) * 2**20 // 4  # float32 elements: far beyond any cache
    src = xp.asarray(rng.standard_normal(n_copy, dtype=np.float32))
    dst = xp.empty_like(src)
    # the short measurements get more runs: a burst of other work on the machine lasts longer
    # than five of them
    t = time_on(device, lambda: xp.copyto(dst, src), 3 * repeat, stat="min")
    copy = 2 * src.nbytes / t

    gemm = {}
    for dt in (np.float32, np.float64):
        n = 4096 if gpu else 1024
        a = xp.asarray(rng.standard_normal((n, n)).astype(dt))
        b = xp.asarray(rng.standard_normal((n, n)).astype(dt))
        c = xp.empty((n, n), dt)
        t = time_on(device, lambda a=a, b=b, c=c: xp.matmul(a, b, out=c), repeat, stat="min")
        gemm[dt] = 2 * n**3 / t
        if not gpu:
            note_blas()  # the FFT timing below waits for BLAS threads to stop spinning

    fft = {}
    for dt in (np.float32, np.float64):
        n = 4096 if gpu else 1024
        a = xp.asarray(rng.standard_normal((n, n)).astype(dt))
        if gpu:
            run = lambda a=a: xp.fft.rfft2(a)  # noqa: E731
        else:
            import scipy.fft

            run = lambda a=a: scipy.fft.rfft2(a, workers=-1)  # noqa: E731
        t = time_on(device, run, 3 * repeat, warmup=5, stat="min")
        fft[dt] = n * n * math.log2(n * n) / t

    return Rates(
        device,
        copy,
        gemm[np.float32],
        gemm[np.float64],
        fft[np.float32],
        fft[np.float64],
    )
