"""What gpuconv remembers between runs: tuned cost constants and benchmarked choices.

One JSON file per kind and device in the user's cache directory (``$GPUCONV_CACHE_DIR``, else
``$XDG_CACHE_HOME/gpuconv``, else ``~/.cache/gpuconv``; ``%LOCALAPPDATA%\\gpuconv`` on Windows):

* ``constants-<device>.json``: written by ``gpuconv tune``, read by ``import gpuconv`` for the
  CPU and the first time the dispatcher needs a GPU's cost constants;
* ``autotune-<device>.json``: the winners of ``method='benchmark'`` / ``algorithm='benchmark'``.

Each file records the gpuconv version and the device it was measured on.  Files are written
atomically (a temporary file in the same folder, then ``os.replace``), so a reader never sees half
of one.  A file that cannot be parsed, or that another gpuconv version or another device wrote
(a home folder shared between machines), is ignored with a :class:`CacheWarning` that says why
and what to do.  ``GPUCONV_CACHE=off`` turns reading and writing off.
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
from functools import cache
from pathlib import Path

from . import _warn

FORMAT = 1


class CacheWarning(UserWarning):
    """A cache file was ignored (corrupt, or written by another gpuconv version or device)."""


def enabled() -> bool:
    return os.environ.get("GPUCONV_CACHE", "on").strip().lower() not in ("off", "0", "no", "false")


def cache_dir() -> Path:
    """The folder gpuconv's cache files live in (it may not exist yet)."""
    env = os.environ.get("GPUCONV_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "gpuconv"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gpuconv"


def _version() -> str:
    from . import __version__

    return __version__


@cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_id(device: str) -> str:
    """A description of the hardware ``device`` runs on, precise enough that constants measured
    on one machine are not used on another: the CPU model and usable threads, or the GPU's name
    and compute capability."""
    if device == "cpu":
        from ._costs import cpu_threads

        return f"cpu {_cpu_model()} x{cpu_threads()} threads"
    if device == "cuda":
        from ._arrays import require_cupy

        cp = require_cupy()
        dev = cp.cuda.Device()
        props = cp.cuda.runtime.getDeviceProperties(dev.id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        return f"cuda {name} sm_{dev.compute_capability}"
    raise ValueError(f"unknown device {device!r}; use 'cpu' or 'cuda'")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:80]


def path(kind: str, device: str) -> Path:
    """Where the ``kind`` ('constants' or 'autotune') file of ``device`` lives."""
    return cache_dir() / f"{kind}-{_slug(device_id(device))}.json"


def load(kind: str, device: str, quiet: bool = False) -> dict | None:
    """The payload of a valid cache file, or None (missing, disabled, or ignored with a warning,
    which ``quiet`` leaves out: for a second read of a file already warned about)."""
    if not enabled():
        return None
    p = path(kind, device)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        _ignored(p, f"it cannot be read ({e})", kind, quiet)
        return None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        _ignored(p, f"it is not valid UTF-8 JSON ({type(e).__name__}: {e})"[:300], kind, quiet)
        return None
    why = _foreign(doc, kind, device)
    if why:
        _ignored(p, why, kind, quiet)
        return None
    return doc["payload"]


def _foreign(doc, kind: str, device: str) -> str | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("payload"), dict):
        return "it is not a gpuconv cache file"
    if doc.get("format") != FORMAT or doc.get("kind") != kind:
        return f"it is not a gpuconv {kind} file of format {FORMAT}"
    if doc.get("gpuconv") != _version():
        return f"it was written by gpuconv {doc.get('gpuconv')}, this is {_version()}"
    if doc.get("device") != device_id(device):
        return f"it was measured on {doc.get('device')!r}, this is {device_id(device)!r}"
    return None


def ignored(kind: str, device: str, why: str) -> None:
    """Warn that the ``kind`` file of ``device`` (or part of it) is ignored, and why."""
    _ignored(path(kind, device), why, kind)


def _ignored(p: Path, why: str, kind: str, quiet: bool = False) -> None:
    if quiet:
        return
    if kind == "constants":
        todo = "run `gpuconv tune` to measure this machine"
    else:
        todo = "choices are timed again, and saved there if the folder can be written"
    _warn.warn(f"gpuconv ignores {p}: {why}; {todo}", CacheWarning)


def save(kind: str, device: str, payload: dict) -> Path | None:
    """Write ``payload`` as the ``kind`` file of ``device`` atomically; its path (None when the
    cache is off)."""
    if not enabled():
        return None
    p = path(kind, device)
    doc = {
        "format": FORMAT,
        "kind": kind,
        "gpuconv": _version(),
        "device": device_id(device),
        "payload": payload,
    }
    p.parent.mkdir(parents=True, exist_ok=True)
    # not mkstemp: its 0600 would keep the file from the others sharing a GPUCONV_CACHE_DIR;
    # os.open's mode goes through the umask like any other file's
    tmp = p.parent / f".{p.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)  # unsorted: remembered choices keep their age order
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p
