"""Benchmark suites: every gpuconv algorithm beside the installed peers, on random inputs.

A suite is a set of sweeps run on one device or both: a 2-D image sweep over kernel sizes, a 1-D
signal sweep over filter lengths, CNN layers, and the dispatcher's held-out problem grid
(:func:`gpuconv._grids.holdout`).  In every case each method's result is first checked against an
independent float64 reference (:func:`reference`; a wrong result is reported as WRONG and not
timed), then timed as the median of ``repeat`` runs after a warm-up (:mod:`gpuconv._timing`: wall
clock on the CPU, CUDA events on the GPU).  The machine's ceilings are measured in the same run
(:mod:`gpuconv._rates`) and every result is set against its floor; every report states the
dispatcher's regret (:func:`regret_summary`).  :func:`save` writes report.md, results.json and
the plots (:mod:`gpuconv._plots`).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import importlib.metadata
import json
import platform
import shutil
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _arrays, _blas, _cache, _grids, _rates, _timing, dispatch
from . import nn as gnn
from . import signal as gsignal
from ._spec import ConvSpec

SUITE_NAMES = ("quick", "signal", "cnn", "regret", "full")
DEVICES = ("cpu", "cuda", "all")

#: gpuconv algorithms estimated this many times slower than the best are not run
SKIP_FACTOR = 25.0
#: peers with a quadratic-time direct path are not run past this kernel size (minutes each)
PEER_MAX_K = {"cupyx.convolve2d": 31}
#: untimed runs after the check run (itself the first): compilation, FFT plans, the allocator
WARMUP = 2
#: relative tolerance of the result check, by precision (of the largest possible |output|)
RTOL = {"single": 1e-4, "double": 1e-9}

F32 = np.dtype(np.float32)


# ---------------------------------------------------------------------------------------------
# suites


@dataclass(frozen=True)
class Layer:
    """One CNN layer: NCHW float32, square input and kernel, padding k // 2."""

    name: str
    c_in: int
    c_out: int
    size: int
    k: int
    stride: int = 1
    groups: int = 1

    def spec(self, batch: int) -> ConvSpec:
        return ConvSpec(
            in_shape=(self.size, self.size),
            kernel_shape=(self.k, self.k),
            batch=batch,
            c_in=self.c_in,
            c_out=self.c_out,
            groups=self.groups,
            stride=self.stride,
            pad_lo=self.k // 2,
            pad_hi=self.k // 2,
            dtype=F32,
        )

    def label(self, batch: int) -> str:
        kind = "depthwise " if self.groups > 1 and self.groups == self.c_in else ""
        return (
            f"{self.name} {self.c_in}->{self.c_out} {self.size}x{self.size} "
            f"{kind}{self.k}x{self.k}/{self.stride} b{batch}"
        )


#: the ResNet-50 layers whose cuDNN times are the GPU targets (bench/NOTES-gpu-plan.md) and a
#: depthwise 3x3 layer
CNN_LAYERS = (
    Layer("resnet50 conv1", 3, 64, 224, 7, stride=2),
    Layer("resnet50", 64, 64, 56, 3),
    Layer("resnet50", 128, 128, 28, 3),
    Layer("resnet50", 256, 256, 14, 3),
    Layer("resnet50", 512, 512, 7, 3),
    Layer("resnet50", 256, 64, 56, 1),
    Layer("depthwise", 256, 256, 56, 3, groups=256),
)


@dataclass(frozen=True)
class Config:
    """What one device runs of a suite; empty fields are sweeps the suite does not have."""

    image: tuple[int, int] | None = None  # 2-D 'same' sweep over ``kernels``
    kernels: tuple[int, ...] = ()
    signal: int | None = None  # 1-D 'same' sweep over ``taps``
    taps: tuple[int, ...] = ()
    layers: tuple[Layer, ...] = ()
    batch: int = 1
    grid: tuple[ConvSpec, ...] = ()  # problems run on the canonical ConvSpec (regret)
    repeat: int = 5


_IMAGE_KS = (3, 5, 7, 11, 15, 31)
_SIGNAL_KS = (3, 5, 7, 9, 11, 15, 21, 31, 63)
_TAPS = tuple(2**i for i in range(3, 13))  # 8 .. 4096


def config(suite: str, device: str) -> Config:
    """The sizes of ``suite`` on ``device`` ('cpu' or 'cuda'; the GPU gets bigger problems)."""
    if suite not in SUITE_NAMES:
        raise ValueError(f"unknown suite {suite!r}; one of {', '.join(SUITE_NAMES)}")
    gpu = device == "cuda"
    image = (4096, 4096) if gpu else (2048, 2048)
    repeat = 10 if gpu else 5
    if suite == "quick":
        return Config(image=image, kernels=_IMAGE_KS, repeat=repeat)
    signal = Config(
        image=image,
        kernels=_SIGNAL_KS,
        signal=2**24 if gpu else 1_000_000,
        taps=_TAPS,
        repeat=repeat,
    )
    layers = {"layers": CNN_LAYERS, "batch": 32 if gpu else 2}
    grid = {"grid": tuple(_grids.holdout(device))}
    if suite == "signal":
        return signal
    if suite == "cnn":
        return Config(repeat=repeat, **layers)
    if suite == "regret":
        return Config(repeat=repeat, **grid)
    return dataclasses.replace(signal, **layers, **grid)  # full


# ---------------------------------------------------------------------------------------------
# rows and the report


@dataclass
class Row:
    """One method on one problem: its time, or why there is none."""

    device: str
    sweep: str
    problem: str
    method: str
    kind: str  # 'gpuconv' (one algorithm), 'auto' (the dispatcher's choice) or 'peer'
    ms: float | None = None
    status: str = "ok"  # ok, skipped, n/a, not installed, WRONG, error
    note: str = ""
    k: int | None = None
    choice: str | None = None  # auto rows: the algorithm chosen
    est_s: float | None = None  # the cost model's estimate (gpuconv and auto rows)
    flops: int = 0  # of the direct algorithm
    mem_floor_s: float | None = None
    arith_floor_s: float | None = None
    floor_s: float | None = None

    @property
    def fraction(self) -> float | None:
        """The floor's time over the measured time (1: at the floor)."""
        if self.ms is None or self.floor_s is None:
            return None
        return self.floor_s / (self.ms * 1e-3)

    @property
    def gflops(self) -> float | None:
        """The direct algorithm's FLOP count over the measured time."""
        return None if self.ms is None else self.flops / (self.ms * 1e-3) / 1e9

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "fraction": self.fraction, "gflops": self.gflops}


@dataclass(frozen=True)
class Sweep:
    """A table of the report: one device, one family of problems."""

    device: str
    name: str  # 'image', 'signal', 'cnn' or 'holdout'
    title: str
    xlabel: str | None = None  # problems form a sweep over kernel size (plotted)


@dataclass
class Report:
    suite: str
    device: str
    machine: dict
    date: str = ""
    rows: list[Row] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)
    rates: dict[str, _rates.Rates] = field(default_factory=dict)
    repeat: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def sweep_rows(self, sweep: Sweep) -> list[Row]:
        return [r for r in self.rows if r.device == sweep.device and r.sweep == sweep.name]

    def regret(self) -> dict[str, dict]:
        """:func:`regret_summary` per device."""
        devices = dict.fromkeys(r.device for r in self.rows)
        return {d: regret_summary(r for r in self.rows if r.device == d) for d in devices}


def regret_summary(rows: Iterable[Row]) -> dict:
    """The dispatcher's regret: per problem, the measured time of the algorithm auto chose over
    the fastest measured gpuconv algorithm; with its median and worst over the problems.

    Problems where no algorithm was timed are left out; problems where auto's choice has no
    time (it gave a wrong result or failed) are listed under ``undefined``.
    """
    groups: dict[tuple, list[Row]] = {}
    for r in rows:
        groups.setdefault((r.device, r.sweep, r.problem), []).append(r)
    per, undefined = [], []
    for (device, sweep, problem), rs in groups.items():
        auto = next((r for r in rs if r.kind == "auto" and r.choice), None)
        algs = {r.method: r.ms for r in rs if r.kind == "gpuconv" and r.ms is not None}
        if auto is None or not algs:
            continue
        fastest = min(algs, key=algs.get)
        # the chosen algorithm's own row: the choice's quality, without a second noisy timing
        t = algs.get(f"gpuconv.{auto.choice}", auto.ms)
        item = {"device": device, "sweep": sweep, "problem": problem, "choice": auto.choice}
        if t is None:
            undefined.append({**item, "why": f"{auto.status}: {auto.note}"})
            continue
        fast = fastest.removeprefix("gpuconv.")
        per.append({**item, "fastest": fast, "regret": t / algs[fastest]})
    worst = max(per, key=lambda p: p["regret"], default=None)
    return {
        "n": len(per),
        "median": statistics.median(p["regret"] for p in per) if per else None,
        "worst": worst["regret"] if worst else None,
        "worst_problem": worst["problem"] if worst else None,
        "problems": per,
        "undefined": undefined,
    }


def crossovers(times: dict[int, dict[str, float | None]]) -> list[tuple[int, int, str, str]]:
    """Where the fastest algorithm changes between consecutive kernel sizes.

    ``times`` maps a kernel size to each algorithm's time (None: not timed); returns
    ``(k before, k after, fastest before, fastest after)`` for each change.

    >>> crossovers({3: {"a": 1.0, "b": 2.0}, 5: {"a": 3.0, "b": 2.0}})
    [(3, 5, 'a', 'b')]
    """
    out, prev = [], None
    for k in sorted(times):
        t = {n: v for n, v in times[k].items() if v is not None}
        if not t:
            continue
        best = min(t, key=t.get)
        if prev is not None and best != prev[1]:
            out.append((prev[0], k, prev[1], best))
        prev = (k, best)
    return out


def _sweep_crossovers(rows: list[Row]) -> list[tuple[int, int, str, str]]:
    times: dict[int, dict[str, float | None]] = {}
    for r in rows:
        if r.kind == "gpuconv" and r.k is not None:
            times.setdefault(r.k, {})[r.method.removeprefix("gpuconv.")] = r.ms
    return crossovers(times)


# ---------------------------------------------------------------------------------------------
# the float64 reference every result is checked against


def reference(spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``spec`` solved in float64 (complex128) on the host, without gpuconv's algorithms.

    Single-channel planes with stride and dilation 1 go through ``scipy.signal.fftconvolve``;
    anything else is a sum over sliding windows (``tensordot``, one batch item and group at a
    time to bound the memory).
    """
    dt = np.complex128 if spec.is_complex else np.float64
    xp = spec.padded_input(np.asarray(x, dtype=dt))
    wc = np.asarray(spec.kernel_for_correlation(np.asarray(w, dtype=dt)))
    g = spec.groups
    cig, cog = spec.c_in // g, spec.c_out // g
    y = np.empty(spec.y_shape, dt)
    nd = spec.ndim
    plain = all(v == 1 for v in spec.stride + spec.dilation)
    if plain and cig == cog == 1:
        import scipy.signal

        flip = (slice(None, None, -1),) * nd
        for n in range(spec.batch):
            for c in range(spec.c_in):
                y[n, c] = scipy.signal.fftconvolve(xp[n, c], wc[c, 0][flip], mode="valid")
        return y
    from numpy.lib.stride_tricks import sliding_window_view

    sp = tuple(range(1, 1 + nd))
    pick = (slice(None),)
    pick += tuple(slice(0, s * (o - 1) + 1, s) for s, o in zip(spec.stride, spec.out_shape))
    pick += tuple(slice(None, None, d) for d in spec.dilation)
    for n in range(spec.batch):
        for gi in range(g):
            win = sliding_window_view(xp[n, gi * cig : (gi + 1) * cig], spec.reach, axis=sp)
            ws = wc[gi * cog : (gi + 1) * cog]  # (cog, cig, *k)
            axes = ([1, *range(2, 2 + nd)], [0, *range(1 + nd, 1 + 2 * nd)])
            y[n, gi * cog : (gi + 1) * cog] = np.tensordot(ws, win[pick], axes=axes)
    return y


def tolerance(spec: ConvSpec, x: np.ndarray, w: np.ndarray) -> float:
    """The largest error a correct result may have: a relative tolerance of the precision times
    the largest possible |output| (max |x| times the largest sum of one output's |w|)."""
    single = spec.dtype in (np.float32, np.complex64)
    wsum = np.abs(np.asarray(w)).reshape(spec.c_out, -1).sum(axis=1).max()
    bound = float(np.abs(np.asarray(x)).max()) * float(wsum)
    return RTOL["single" if single else "double"] * bound + 1e-300


def _max_error(out: np.ndarray, ref: np.ndarray) -> float | None:
    """Largest absolute difference, or None when the shapes do not match."""
    if out.size != ref.size:
        return None
    return float(np.max(np.abs(out.reshape(ref.shape).astype(ref.dtype) - ref)))


# ---------------------------------------------------------------------------------------------
# methods and cases


@dataclass
class Method:
    """One row to fill: a callable to check and time, or why there is none."""

    kind: str
    fn: Callable[[], object] | None = None
    status: str = "ok"
    note: str = ""
    est_s: float | None = None
    choice: str | None = None
    alias: str | None = None  # an auto row that takes the chosen algorithm's row


@dataclass
class Case:
    problem: str
    k: int | None
    spec: ConvSpec
    x: np.ndarray  # host operands in the spec's layout (for the reference)
    w: np.ndarray
    methods: dict[str, Method]


def _try_import(name: str):
    """The module, or None when it (or what it needs) is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _xp(device: str):
    return _arrays.require_cupy() if device == "cuda" else np


def _algorithms(plan: dispatch.Plan, runner: Callable[[str], Callable]) -> dict[str, Method]:
    """A method per algorithm of the plan: run, or why not (does not apply, estimated hopeless)."""
    best = min(plan.estimates.values())
    out = {}
    for c in plan.candidates:
        name = f"gpuconv.{c.name}"
        if c.seconds is None:
            out[name] = Method("gpuconv", status="n/a", note=c.reason or "")
        elif c.seconds > SKIP_FACTOR * best:
            why = f"est. {c.seconds / best:.0f}x the best"
            out[name] = Method("gpuconv", status="skipped", note=why, est_s=c.seconds)
        else:
            out[name] = Method("gpuconv", runner(c.name), est_s=c.seconds)
    return out


def _auto(plan: dispatch.Plan, fn=None) -> Method:
    alias = None if fn is not None else f"gpuconv.{plan.algorithm}"
    est = plan.estimates[plan.algorithm]
    return Method("auto", fn, est_s=est, choice=plan.algorithm, alias=alias)


def _peer(fn: Callable[[], object] | str) -> Method:
    if isinstance(fn, str):
        return Method("peer", status="not installed", note=fn)
    return Method("peer", fn)


def _same_spec(shape: tuple[int, ...], k: int) -> ConvSpec:
    """scipy's convolve(mode='same') of ``shape`` with a k^d kernel, as gpuconv maps it."""
    return _grids._same(shape, k, F32)


def _filter_case(device: str, shape: tuple[int, ...], k: int, rng, problem: str) -> Case:
    """2-D image or 1-D signal filtering, 'same', float32: algorithms, auto and the peers."""
    xp = _xp(device)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((k,) * len(shape), dtype=np.float32)
    xd, wd = xp.asarray(x), xp.asarray(w)
    spec = _same_spec(shape, k)
    x4, w4 = xd.reshape(spec.x_shape), wd.reshape(spec.w_shape)
    plan = dispatch.choose(spec, w4, device=device)
    # the algorithm rows call the algorithm itself: convolve(method='direct') means "not an
    # FFT" as in scipy, and may run im2col
    methods = {"gpuconv.auto": _auto(plan, lambda: gsignal.convolve(xd, wd, "same"))}
    methods.update(
        _algorithms(plan, lambda n: lambda: dispatch.execute(spec, x4, w4, n, device=device))
    )
    peers = _image_peers(device, xd, wd) if len(shape) == 2 else _signal_peers(device, xd, wd)
    for name, fn in peers.items():
        if k > PEER_MAX_K.get(name, k):
            why = f"k > {PEER_MAX_K[name]} (quadratic-time direct path)"
            methods[name] = Method("peer", status="skipped", note=why)
        else:
            methods[name] = _peer(fn)
    return Case(problem, k, spec, x.reshape(spec.x_shape), w.reshape(spec.w_shape), methods)


def _layer_case(device: str, layer: Layer, batch: int, rng, problem: str) -> Case:
    """A CNN layer through gpuconv.nn.conv2d with each algorithm and 'auto', and torch."""
    xp = _xp(device)
    spec = layer.spec(batch)
    x, w = (
        _grids.random_operand(rng, spec.x_shape, F32),
        _grids.random_operand(rng, spec.w_shape, F32),
    )
    xd, wd = xp.asarray(x), xp.asarray(w)
    kw = {"stride": layer.stride, "padding": layer.k // 2, "groups": layer.groups}
    plan = dispatch.choose(spec, wd, device=device)
    methods = {"gpuconv.auto": _auto(plan, lambda: gnn.conv2d(xd, wd, **kw))}
    methods.update(_algorithms(plan, lambda n: lambda: gnn.conv2d(xd, wd, **kw, algorithm=n)))
    methods["torch.conv2d"] = _peer(_torch_layer(device, xd, wd, kw))
    return Case(problem, layer.k, spec, x, w, methods)


def _grid_case(device: str, spec: ConvSpec, rng, problem: str) -> Case:
    """A held-out problem on the canonical spec: every algorithm; auto is the chosen one's row."""
    xp = _xp(device)
    x, w = (
        _grids.random_operand(rng, spec.x_shape, spec.dtype),
        _grids.random_operand(rng, spec.w_shape, spec.dtype),
    )
    xd, wd = xp.asarray(x), xp.asarray(w)
    plan = dispatch.choose(spec, wd, device=device)
    methods = {"gpuconv.auto": _auto(plan)}
    methods.update(
        _algorithms(plan, lambda n: lambda: dispatch.execute(spec, xd, wd, n, device=device))
    )
    return Case(problem, max(spec.kernel_shape), spec, x, w, methods)


# ---------------------------------------------------------------------------------------------
# peers


def _filter2d(cv2):
    def run(a, k):
        # filter2D correlates and anchors at the kernel centre: flip the kernel, and for even
        # sizes set the anchor to match scipy's 'same' window
        kf = np.ascontiguousarray(k[::-1, ::-1])
        anchor = (k.shape[1] - 1 - (k.shape[1] - 1) // 2, k.shape[0] - 1 - (k.shape[0] - 1) // 2)
        return cv2.filter2D(a, -1, kf, anchor=anchor, borderType=cv2.BORDER_CONSTANT)

    return run


def cupyx_image_peers(sig, ndi) -> dict[str, Callable]:
    """cupyx's 'same' 2-D convolutions, given ``cupyx.scipy.signal`` and ``cupyx.scipy.ndimage``
    (they mirror scipy's, so scipy's modules check the alignment on a CPU)."""
    return {
        "cupyx.convolve2d": lambda a, k: sig.convolve2d(a, k, mode="same"),
        # ndimage centres an even kernel one sample later than scipy.signal's 'same'
        "cupyx.ndimage.convolve": lambda a, k: ndi.convolve(
            a, k, mode="constant", origin=[n % 2 - 1 for n in k.shape]
        ),
        "cupyx.fftconvolve": lambda a, k: sig.fftconvolve(a, k, mode="same"),
    }


def signal_peers(sig, prefix: str) -> dict[str, Callable]:
    """'same' 1-D convolutions of a scipy.signal-like module."""
    return {
        f"{prefix}.convolve": lambda a, k: sig.convolve(a, k, mode="same"),
        f"{prefix}.fftconvolve": lambda a, k: sig.fftconvolve(a, k, mode="same"),
        f"{prefix}.oaconvolve": lambda a, k: sig.oaconvolve(a, k, mode="same"),
    }


def _bind(fns: dict[str, Callable | str], a, k) -> dict[str, Callable | str]:
    return {n: (f if isinstance(f, str) else (lambda f=f: f(a, k))) for n, f in fns.items()}


_NO_CUPYX = "not installed: cupyx.scipy (comes with CuPy 13 or later)"


def _image_peers(device: str, a, k) -> dict[str, Callable | str]:
    if device == "cpu":
        import scipy.signal as ss

        cv2 = _try_import("cv2")
        fns: dict[str, Callable | str] = {
            "scipy.convolve": lambda a, k: ss.convolve(a, k, mode="same"),
            "scipy.fftconvolve": lambda a, k: ss.fftconvolve(a, k, mode="same"),
            "opencv.filter2D": _filter2d(cv2) if cv2 else "not installed: opencv-python-headless",
        }
        return _bind(fns, a, k)
    sig, ndi = _try_import("cupyx.scipy.signal"), _try_import("cupyx.scipy.ndimage")
    if sig is None or ndi is None:
        fns = dict.fromkeys(cupyx_image_peers(None, None), _NO_CUPYX)
    else:
        fns = cupyx_image_peers(sig, ndi)
    out = _bind(fns, a, k)
    out["torch.conv2d"] = _torch_same2d(a, k)
    return out


def _signal_peers(device: str, a, k) -> dict[str, Callable | str]:
    if device == "cpu":
        import scipy.signal as ss

        return _bind(signal_peers(ss, "scipy"), a, k)
    sig = _try_import("cupyx.scipy.signal")
    if sig is None:
        return dict.fromkeys(signal_peers(None, "cupyx"), _NO_CUPYX)
    return _bind(signal_peers(sig, "cupyx"), a, k)


def _torch(device: str):
    """torch when installed (and, for 'cuda', when it sees the GPU), else why not."""
    torch = _try_import("torch")
    if torch is None:
        return "not installed: torch"
    if device == "cuda":
        if not torch.cuda.is_available():
            return "torch is installed but does not see a CUDA device"
        # the peer as its users run it at full float32 precision: cuDNN picks its fastest
        # algorithm, and no TF32 (gpuconv's GPU results are plain float32)
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    return torch


def _tensor(torch, a, device: str):
    # a CuPy array is shared through __cuda_array_interface__, not copied
    return torch.as_tensor(a, device="cuda") if device == "cuda" else torch.from_numpy(a)


def _torch_layer(device: str, x, w, kw: dict) -> Callable | str:
    torch = _torch(device)
    if isinstance(torch, str):
        return torch
    tx, tw = _tensor(torch, x, device), _tensor(torch, w, device)
    return lambda: torch.nn.functional.conv2d(tx, tw, **kw)


def _torch_same2d(a, k) -> Callable | str:
    """torch conv2d as scipy's convolve(mode='same') on the GPU (kernel flipped, scipy's
    asymmetric padding for even sizes)."""
    torch = _torch("cuda")
    if isinstance(torch, str):
        return torch
    tx = _tensor(torch, a, "cuda")[None, None]
    tw = _tensor(torch, k, "cuda").flip(-1, -2).contiguous()[None, None]
    # scipy's 'same' window starts k // 2 before the output sample (see _same_spec)
    lo_h, lo_w = k.shape[0] // 2, k.shape[1] // 2
    hi_h, hi_w = (k.shape[0] - 1) // 2, (k.shape[1] - 1) // 2
    F = torch.nn.functional
    if (lo_h, lo_w) == (hi_h, hi_w):
        return lambda: F.conv2d(tx, tw, padding=(lo_h, lo_w))
    return lambda: F.conv2d(F.pad(tx, (lo_w, hi_w, lo_h, hi_h)), tw)


# ---------------------------------------------------------------------------------------------
# running


def _sweeps(cfg: Config, device: str) -> list[tuple[Sweep, list[tuple[str, Callable]]]]:
    """The sweeps of ``cfg``, each with (problem label, case builder) per problem."""
    out = []
    if cfg.image and cfg.kernels:
        h, w = cfg.image
        title = f"2-D image filtering: {h}x{w} float32 'same', k x k kernels"
        sw = Sweep(device, "image", title, "kernel size k (k x k)")
        items = [
            (f"{h}x{w} f32 same k={k}", lambda rng, p, k=k: _filter_case(device, (h, w), k, rng, p))
            for k in cfg.kernels
        ]
        out.append((sw, items))
    if cfg.signal and cfg.taps:
        n = cfg.signal
        title = f"1-D signal filtering: {n} samples float32 'same', filter length k"
        sw = Sweep(device, "signal", title, "filter length k")
        items = [
            (f"{n} f32 same taps={k}", lambda rng, p, k=k: _filter_case(device, (n,), k, rng, p))
            for k in cfg.taps
        ]
        out.append((sw, items))
    if cfg.layers:
        title = f"CNN layers: NCHW float32, batch {cfg.batch}, forward"
        sw = Sweep(device, "cnn", title)
        items = [
            (ly.label(cfg.batch), lambda rng, p, ly=ly: _layer_case(device, ly, cfg.batch, rng, p))
            for ly in cfg.layers
        ]
        out.append((sw, items))
    if cfg.grid:
        title = "Held-out problems (no tuning saw them): every algorithm on the ConvSpec"
        sw = Sweep(device, "holdout", title)
        labels = _unique([_grids.label(s) for s in cfg.grid])
        items = [
            (lb, lambda rng, p, s=s: _grid_case(device, s, rng, p))
            for lb, s in zip(labels, cfg.grid)
        ]
        out.append((sw, items))
    return out


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for lb in labels:
        seen[lb] = seen.get(lb, 0) + 1
        out.append(lb if seen[lb] == 1 else f"{lb} #{seen[lb]}")
    return out


def _devices(device: str) -> tuple[list[str], list[str]]:
    """The devices to run and what was skipped; 'cuda' without CuPy or a GPU raises
    :func:`gpuconv._arrays.require_cupy`'s error."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; one of {', '.join(DEVICES)}")
    if device == "cpu":
        return ["cpu"], []
    if device == "cuda":
        _arrays.require_cupy()
        return ["cuda"], []
    try:
        _arrays.require_cupy()
    except (_arrays.CupyUnavailableError, _arrays.CudaUnavailableError) as e:
        return ["cpu"], [f"GPU part skipped: {e}"]
    return ["cpu", "cuda"], []


#: ``progress(done, total, text, minor=False)``: ``minor`` updates name the method being run
Progress = Callable[..., None]


def run_suite(
    suite: str = "quick",
    device: str = "cpu",
    *,
    progress: Progress | None = None,
    sizes: tuple[int, ...] | None = None,
    **overrides,
) -> Report:
    """Run ``suite`` on ``device`` ('cpu', 'cuda' or 'all') and return its report.

    ``sizes`` replaces the 2-D sweep's kernel sizes and the 1-D sweep's filter lengths;
    ``overrides`` replace any :class:`Config`
    field on every device (the tests run tiny problems so).  ``progress(done, total, text,
    minor=False)`` is called before each case (and with ``minor=True`` before each method of
    it), and once at the end with ``done == total``.
    """
    t0 = time.perf_counter()
    devices, skipped = _devices(device)
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    report = Report(suite, device, machine_info(), when, skipped=skipped)
    plan = []
    for dev in devices:
        cfg = config(suite, dev)
        if sizes:  # both kernel-size sweeps; the layers and the held-out grid are fixed
            cfg = dataclasses.replace(
                cfg,
                kernels=tuple(sizes) if cfg.kernels else (),
                taps=tuple(sizes) if cfg.taps else (),
            )
        cfg = dataclasses.replace(cfg, **overrides)
        report.repeat[dev] = cfg.repeat
        for sweep, items in _sweeps(cfg, dev):
            report.sweeps.append(sweep)
            plan += [(sweep, cfg.repeat, label, build) for label, build in items]
    total = len(plan)
    for dev in devices:
        if progress:
            progress(0, total, f"measuring the {dev} ceilings")
        report.rates[dev] = _rates.measure(dev)
        if dev == "cuda":
            report.machine["gpu"] = gpu_info()
    rng = np.random.default_rng(0)
    for i, (sweep, repeat, label, build) in enumerate(plan):
        step = (lambda text, i=i: progress(i, total, text, minor=True)) if progress else None
        if progress:
            progress(i, total, label)
        report.rows += _run_problem(build, rng, label, sweep, repeat, report.rates, step)
        _release(sweep.device)
    report.seconds = time.perf_counter() - t0
    if progress:
        progress(total, total, f"done in {report.seconds:.0f} s")
    return report


def _run_problem(build, rng, label: str, sweep: Sweep, repeat: int, rates, step) -> list[Row]:
    # a problem that cannot even be set up (inputs beyond the GPU's memory, no algorithm for
    # it) is reported as an error row; the run goes on
    try:
        return _run_case(build(rng, label), sweep, repeat, rates[sweep.device], step)
    except Exception as e:
        note = f"setting up the problem: {type(e).__name__}: {e}"[:300]
        return [Row(sweep.device, sweep.name, label, "gpuconv.auto", "auto", None, "error", note)]


def _release(device: str) -> None:
    """Give the GPU's cached blocks back between cases (the next case may need them all)."""
    if device == "cuda":
        cp = _arrays.require_cupy()
        pool = getattr(cp, "get_default_memory_pool", None)
        if pool is not None:
            pool().free_all_blocks()


def _run_case(case: Case, sweep: Sweep, repeat: int, rates, step) -> list[Row]:
    ref = reference(case.spec, case.x, case.w)
    tol = tolerance(case.spec, case.x, case.w)
    floors = floors_of(case.spec, rates)
    rows = {}
    for name, m in case.methods.items():
        row = Row(sweep.device, sweep.name, case.problem, name, m.kind, k=case.k)
        row.choice, row.est_s, row.flops = m.choice, m.est_s, case.spec.flops
        row.mem_floor_s, row.arith_floor_s, row.floor_s = floors
        if m.fn is not None:
            if step:
                step(f"{case.problem} | {name}")
            _check_and_time(row, m.fn, ref, tol, repeat)
        elif m.alias is None:
            row.status, row.note = m.status, m.note
        rows[name] = row
    for name, m in case.methods.items():
        if m.fn is None and m.alias is not None:
            src = rows.get(m.alias)
            row = rows[name]
            if src is not None:
                row.ms, row.status = src.ms, src.status
                row.note = src.note if src.status != "ok" else f"the {m.choice} row"
    _confirm_choice(rows, case, repeat)
    return list(rows.values())


#: the re-timing of auto's choice against the algorithms that timed less than ``CONFIRM_SPAN``
#: times it alone (at most ``CONFIRM_MAX`` of them): ``CONFIRM_REPEAT`` times the suite's
#: repeats, in ``CONFIRM_TURNS`` turns
CONFIRM_REPEAT = 2
CONFIRM_TURNS = 3
CONFIRM_MAX = 4
CONFIRM_SPAN = 2.0


def _confirm_choice(rows: dict[str, Row], case: Case, repeat: int) -> None:
    """Where auto's choice did not time fastest, time it again in turns with every algorithm
    that timed less than :data:`CONFIRM_SPAN` times it (:func:`_timing.time_interleaved`) and
    keep those times: the regret is their ratio, and algorithms timed apart on a shared machine
    can differ by the load they each met.  (Those slower than that stay as timed alone: load
    would have to change more than twofold to make one of them the fastest.)"""
    auto = next((r for r in rows.values() if r.kind == "auto" and r.choice), None)
    chosen = rows.get(f"gpuconv.{auto.choice}") if auto else None
    if chosen is None or chosen.ms is None:
        return
    timed = [r for r in rows.values() if r.kind == "gpuconv" and r.ms is not None]
    if min(r.ms for r in timed) >= chosen.ms:
        return
    near = sorted(
        (r for r in timed if r is not chosen and r.ms < CONFIRM_SPAN * chosen.ms),
        key=lambda r: r.ms,
    )[:CONFIRM_MAX]
    group = [chosen, *near]
    try:
        times = _timing.time_interleaved(
            chosen.device,
            [case.methods[r.method].fn for r in group],
            CONFIRM_REPEAT * repeat,
            rounds=CONFIRM_TURNS,
        )
    except Exception:  # each was timed once already; keep those times
        return
    for row, t in zip(group, times):
        others = ", ".join(r.method.removeprefix("gpuconv.") for r in group if r is not row)
        row.note = f"re-timed in turns with {others} ({_fmt_ms(row.ms)} ms timed alone)"
        row.ms = t * 1e3
    for name, m in case.methods.items():
        if m.fn is None and m.alias == chosen.method:
            rows[name].ms = chosen.ms


def _check_and_time(row: Row, fn: Callable[[], object], ref, tol: float, repeat: int) -> None:
    """Fill ``row``: WRONG if ``fn``'s result differs from ``ref`` by more than ``tol``, else
    the median time after :data:`WARMUP` more untimed runs."""
    # a method that fails (out of memory, a peer's limit) must not end the run: it is reported
    try:
        err = _max_error(_host(fn()), ref)
    except Exception as e:
        row.status, row.note = "error", f"{type(e).__name__}: {e}"[:300]
        return
    if err is None or not err <= tol:
        row.status = "WRONG"
        row.note = "wrong shape" if err is None else f"max error {err:.3g} > tolerance {tol:.3g}"
        return
    try:
        row.ms = _timing.time_on(row.device, fn, repeat, warmup=WARMUP) * 1e3
    except Exception as e:
        row.status, row.note = "error", f"while timing: {type(e).__name__}: {e}"[:300]


def _host(a) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        return a.detach().cpu().numpy()
    return np.asarray(_arrays.to_host(a))


def floors_of(spec: ConvSpec, rates) -> tuple[float | None, float | None, float | None]:
    """(memory floor, arithmetic floor, the larger) in seconds: ``spec.min_bytes`` at the copy
    bandwidth, the direct algorithm's FLOPs at the GEMM rate."""
    if rates is None:
        return None, None, None
    mem = rates.memory_floor(spec.min_bytes)
    arith = rates.arithmetic_floor(spec.flops, spec.dtype)
    return mem, arith, max(mem, arith)


# ---------------------------------------------------------------------------------------------
# the machine


#: optional packages whose versions a report states: report key -> import name
_OPTIONAL = {"opencv": "cv2", "cupy": "cupy", "torch": "torch", "matplotlib": "matplotlib"}


def _version(module: str) -> str | None:
    """The installed distribution's version of an import name, without importing it."""
    dists = importlib.metadata.packages_distributions().get(module) or []
    for d in dists:
        try:
            return importlib.metadata.version(d)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def machine_info() -> dict:
    """The host and the versions of the libraries that matter (optional ones when installed)."""
    import numba
    import scipy

    from . import __version__

    info = {
        "gpuconv": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": _cache._cpu_model(),
        "cpus": dispatch._costs.cpu_threads(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
    }
    for key, module in _OPTIONAL.items():
        v = _version(module)
        if v:
            info[key] = v
    blas, note = _blas.summary(), _blas.advice()
    if blas:
        info["openblas kernels"] = blas
    if note:
        info["note"] = note
    return info


def gpu_info() -> dict:
    """The CUDA device CuPy uses: name, memory, runtime and driver versions."""
    cp = _arrays.require_cupy()
    info: dict = {"cupy": getattr(cp, "__version__", "?")}
    try:
        rt = cp.cuda.runtime
        props = rt.getDeviceProperties(cp.cuda.Device().id)
        name = props.get("name", b"?")
        info["name"] = name.decode() if isinstance(name, bytes) else str(name)
        info["memory_gib"] = round(props.get("totalGlobalMem", 0) / 2**30, 1)
        info["compute_capability"] = f"{props.get('major', '?')}.{props.get('minor', '?')}"
        info["cuda_runtime"] = rt.runtimeGetVersion()
        info["cuda_driver"] = rt.driverGetVersion()
    except Exception as e:  # the report is still worth having without these
        info["error"] = f"{type(e).__name__}: {e}"
    return info


# ---------------------------------------------------------------------------------------------
# the progress bar (the CLI's; library functions take a callback)


class ProgressBar:
    """``[#####.....] 12/40 text`` redrawn on one line of a terminal; elsewhere (a log, a pipe)
    one line per case and no ``minor`` (per method) updates."""

    def __init__(self, stream, width: int = 24):
        self.stream = stream
        self.width = width
        isatty = getattr(stream, "isatty", None)
        self.tty = bool(isatty and isatty())

    def __call__(self, done: int, total: int, text: str, minor: bool = False) -> None:
        if self.tty:
            filled = self.width * done // max(total, 1)
            line = f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {text}"
            cols = shutil.get_terminal_size((100, 20)).columns - 1
            # a cleared tail and no wrapping, or \r cannot redraw the line
            self.stream.write("\r" + line[:cols].ljust(cols))
            if done >= total:
                self.stream.write("\n")
        elif not minor:
            self.stream.write(f"[{done}/{total}] {text}\n")
        self.stream.flush()


# ---------------------------------------------------------------------------------------------
# the report: Markdown, JSON, plots


def _fmt_ms(ms: float) -> str:
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    if ms >= 0.01:
        return f"{ms:.3f}"
    return f"{ms:.2g}"


def _cell(r: Row | None) -> str:
    if r is None:
        return ""
    if r.ms is None:
        return f"({r.note})" if r.status == "skipped" else r.status
    return _fmt_ms(r.ms) + (f" ({r.choice})" if r.choice else "")


def _table(rows: list[Row], cell: Callable[[Row | None], str], methods=None) -> str:
    problems = list(dict.fromkeys(r.problem for r in rows))
    methods = methods or list(dict.fromkeys(r.method for r in rows))
    at = {(r.problem, r.method): r for r in rows}
    lines = ["| problem | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for p in problems:
        lines.append(f"| {p} | " + " | ".join(cell(at.get((p, m))) for m in methods) + " |")
    return "\n".join(lines)


def times_table(rows: list[Row]) -> str:
    """Problems x methods, ms (auto with its choice), or why there is no time."""
    return _table(rows, _cell)


#: the CPU quick suite's figures beside its peers (kept as before), and each peer over auto
_LEGACY_RATIOS = (
    ("scipy.convolve", "gpuconv.auto"),
    ("gpuconv.direct", "opencv.filter2D"),
    ("gpuconv.fft", "scipy.fftconvolve"),
)


def ratios_table(rows: list[Row]) -> str | None:
    """Time over time for gpuconv beside its peers (below 1: the first is faster)."""
    ms = {(r.problem, r.method): r.ms for r in rows}
    methods = set(r.method for r in rows)
    peers = [m for m in dict.fromkeys(r.method for r in rows if r.kind == "peer")]
    pairs = [p for p in _LEGACY_RATIOS if set(p) <= methods]
    pairs += [(m, "gpuconv.auto") for m in peers if (m, "gpuconv.auto") not in pairs]
    pairs = [(a, b) for a, b in pairs if any(ms.get((p, a)) and ms.get((p, b)) for p, _ in ms)]
    if not pairs:
        return None
    head = "| problem | " + " | ".join(f"{a} / {b}" for a, b in pairs) + " |"
    lines = [head, "|---" * (len(pairs) + 1) + "|"]
    for p in dict.fromkeys(r.problem for r in rows):
        vals = []
        for a, b in pairs:
            ta, tb = ms.get((p, a)), ms.get((p, b))
            vals.append(f"{ta / tb:.2f}" if ta and tb else "-")
        lines.append(f"| {p} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def floors_table(rows: list[Row]) -> str:
    """The floors per problem and each method's achieved fraction of the larger one."""
    problems = list(dict.fromkeys(r.problem for r in rows))
    methods = list(dict.fromkeys(r.method for r in rows))
    at = {(r.problem, r.method): r for r in rows}
    head = "| problem | memory floor ms | arithmetic floor ms | " + " | ".join(methods) + " |"
    lines = [head, "|---" * (len(methods) + 3) + "|"]
    for p in problems:
        first = next(r for r in rows if r.problem == p)
        if first.floor_s is None:
            continue
        fr = [at.get((p, m)) for m in methods]
        cells = [f"{r.fraction:.2g}" if r is not None and r.fraction else "" for r in fr]
        lines.append(
            f"| {p} | {_fmt_ms(first.mem_floor_s * 1e3)} | {_fmt_ms(first.arith_floor_s * 1e3)} "
            f"| " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def gflops_table(rows: list[Row]) -> str:
    return _table(rows, lambda r: f"{r.gflops:.1f}" if r is not None and r.gflops else "")


def _notes(rows: list[Row]) -> list[str]:
    """Why some cells have no time (not applicable, not installed, WRONG, errors), grouped."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for r in rows:
        if r.ms is None and r.status not in ("ok", "skipped"):
            groups.setdefault((r.method, r.status, r.note), []).append(r.problem)
    out = []
    for (method, status, note), probs in groups.items():
        where = probs[0] if len(probs) == 1 else f"{len(probs)} problems"
        out.append(f"- {method}, {status} ({where}): {note}")
    return out


def _regret_lines(report: Report) -> list[str]:
    lines = []
    for dev, s in report.regret().items():
        if s["n"]:
            lines.append(
                f"- **{dev}: median {s['median']:.2f}, worst {s['worst']:.2f}** "
                f"({s['worst_problem']}), over {s['n']} problems"
            )
        else:
            lines.append(f"- {dev}: no problem had both auto's choice and an algorithm timed")
        for u in s["undefined"]:
            lines.append(f"  - {u['problem']}: auto chose {u['choice']}, no time ({u['why']})")
    if any(r.note.startswith("re-timed in turns") for r in report.rows):
        lines.append(
            f"- where auto's choice did not time fastest, it and every algorithm within "
            f"{CONFIRM_SPAN:g}x of it were timed again in {CONFIRM_TURNS} turns ({CONFIRM_REPEAT}x the repeats), so they "
            "met the same machine load; the tables show those times"
        )
    lines += [f"- {s}" for s in report.skipped]
    return lines


def _regret_table(report: Report) -> str:
    lines = ["| device | problem | auto chose | fastest | regret |", "|---|---|---|---|---|"]
    for dev, s in report.regret().items():
        for p in s["problems"]:
            lines.append(
                f"| {dev} | {p['problem']} | {p['choice']} | {p['fastest']} | {p['regret']:.2f} |"
            )
    return "\n".join(lines)


def _sweep_section(report: Report, sw: Sweep, plots: dict[str, str], text: bool) -> list[str]:
    rows = report.sweep_rows(sw)
    out = [f"## {sw.device}: {sw.title}", "", "Times in ms (auto: its choice in brackets):", ""]
    out += [times_table(rows), ""]
    notes = _notes(rows)
    if notes:
        out += notes + [""]
    ratios = ratios_table(rows)
    if ratios:
        out += ["Ratios (time over time; below 1 means the first is faster):", "", ratios, ""]
    if text:
        return out
    if sw.name == "cnn":
        out += ["GFLOP/s (the direct algorithm's FLOPs over the time):", "", gflops_table(rows), ""]
    if any(r.floor_s for r in rows):
        out += [
            "Floors and the achieved fraction (floor time over measured time, the larger "
            "floor; the arithmetic floor counts the direct algorithm's FLOPs, which an FFT can "
            "beat: fractions above 1):",
            "",
            floors_table(rows),
            "",
        ]
    if sw.xlabel:
        xs = _sweep_crossovers(rows)
        if xs:
            out += ["Crossovers (the fastest gpuconv algorithm changes):", ""]
            out += [f"- between k={a} and k={b}: {x} -> {y}" for a, b, x, y in xs] + [""]
    for kind in ("time", "floor"):
        name = plots.get(f"{kind}-{sw.device}-{sw.name}")
        if name:
            out += [f"![{kind} {sw.device} {sw.name}]({name})", ""]
    return out


def _rates_lines(rates: _rates.Rates) -> str:
    return (
        f"copy {rates.copy_bytes_per_s / 1e9:.1f} GB/s (read + written), "
        f"GEMM {rates.gemm_flops_f32 / 1e9:.1f} GFLOP/s float32 and "
        f"{rates.gemm_flops_f64 / 1e9:.1f} float64, "
        f"FFT {rates.fft_nlogn_per_s_f32 / 1e9:.2f} G(n log2 n)/s float32 and "
        f"{rates.fft_nlogn_per_s_f64 / 1e9:.2f} float64"
    )


def summary(report: Report) -> str:
    """What ``gpuconv bench`` prints: the tables, the ratios and the regret."""
    out = [f"gpuconv bench, suite {report.suite}, device {report.device}", ""]
    for sw in report.sweeps:
        out += _sweep_section(report, sw, {}, text=True)
    out += ["Dispatcher regret (auto's choice over the fastest gpuconv algorithm):", ""]
    out += _regret_lines(report)
    if "note" in report.machine:
        out += ["", f"Note: {report.machine['note']}"]
    return "\n".join(out)


def markdown(report: Report, plots: dict[str, str] | None = None, plot_note: str = "") -> str:
    """report.md: method, regret, a section per sweep, the machine."""
    reps = ", ".join(f"{n} on {d}" for d, n in report.repeat.items())
    out = [
        f"# gpuconv bench: suite {report.suite}, device {report.device}",
        "",
        f"{report.date}; {report.seconds:.0f} s. Times in ms: the median of repeats ({reps}) "
        "after a warm-up, wall clock on the CPU and CUDA events on the GPU; random inputs; every "
        "result checked against a float64 reference before it is timed (WRONG: not timed). "
        "`gpuconv.<algorithm>` is that algorithm on the problem (nn.conv2d(algorithm=...) for "
        "CNN layers); `gpuconv.auto` is the public call (dispatch included); algorithms "
        f"estimated over {SKIP_FACTOR:.0f}x the best are not run.",
        "",
        "## Dispatcher regret",
        "",
        "Per problem: the measured time of the algorithm auto chose over the fastest measured "
        "gpuconv algorithm (1.00: auto chose the fastest). The held-out grid no tuning saw is "
        "the `regret` suite; other suites state it over their own problems.",
        "",
        *_regret_lines(report),
        "",
    ]
    if any(s["n"] for s in report.regret().values()):
        out += [_regret_table(report), ""]
    for sw in report.sweeps:
        out += _sweep_section(report, sw, plots or {}, text=False)
    if plot_note:
        out += [f"Plots: {plot_note}", ""]
    out += ["## Machine", ""]
    out += [f"- {k}: {v}" for k, v in report.machine.items()]
    for dev, r in report.rates.items():
        out.append(f"- measured ceilings ({dev}): {_rates_lines(r)}")
    out.append("")
    return "\n".join(out)


def to_json(report: Report, plots: dict[str, str] | None = None, plot_note: str = "") -> dict:
    """results.json: every number of the report."""
    return {
        "suite": report.suite,
        "device": report.device,
        "date": report.date,
        "seconds": report.seconds,
        "repeat": report.repeat,
        "skip_factor": SKIP_FACTOR,
        "machine": report.machine,
        "rates": {d: r.as_dict() for d, r in report.rates.items()},
        "regret": report.regret(),
        "crossovers": {
            f"{sw.device}/{sw.name}": [
                {"k_before": a, "k_after": b, "before": x, "after": y}
                for a, b, x, y in _sweep_crossovers(report.sweep_rows(sw))
            ]
            for sw in report.sweeps
            if sw.xlabel
        },
        "sweeps": [dataclasses.asdict(s) for s in report.sweeps],
        "skipped": report.skipped,
        "plots": sorted((plots or {}).values()),
        "plot_note": plot_note,
        "rows": [r.as_dict() for r in report.rows],
    }


def write_plots(report: Report, out: Path) -> tuple[dict[str, str], str]:
    """The PNGs of every sweep over kernel size: {key: file name}, or a note why there are none."""
    from . import _plots

    why = _plots.missing()
    if why:
        return {}, why
    written = {}
    for sw in report.sweeps:
        rows = [r for r in report.sweep_rows(sw) if r.k is not None]
        if not sw.xlabel or not any(r.ms for r in rows):
            continue
        series: dict[str, list[tuple[float, float]]] = {}
        fractions: dict[str, list[tuple[float, float]]] = {}
        for r in rows:
            if r.ms is not None:
                series.setdefault(r.method, []).append((r.k, r.ms))
            if r.fraction is not None and r.kind != "peer":
                fractions.setdefault(r.method, []).append((r.k, r.fraction))
        ms = {(r.k, r.method): r.ms for r in rows}
        marks = [
            (b, ms[(b, f"gpuconv.{y}")], f"k={b}: {x} -> {y}")
            for a, b, x, y in _sweep_crossovers(rows)
        ]
        title = f"{sw.device}: {sw.title}"
        name = f"time-{sw.device}-{sw.name}.png"
        _plots.time_plot(out / name, title, sw.xlabel, series, marks)
        written[name[:-4]] = name
        if fractions:
            name = f"floor-{sw.device}-{sw.name}.png"
            _plots.fraction_plot(out / name, title, sw.xlabel, fractions)
            written[name[:-4]] = name
    return written, ""


def save(report: Report, out: Path) -> list[Path]:
    """Write report.md, results.json and the plots to ``out``; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots, note = write_plots(report, out)
    (out / "report.md").write_text(markdown(report, plots, note))
    (out / "results.json").write_text(json.dumps(to_json(report, plots, note), indent=2) + "\n")
    return [out / "report.md", out / "results.json", *(out / p for p in plots.values())]
