"""Where the CUDA C sources are: installed as ``gpuconv.kernels_cuda``, or ``kernels_cuda/`` of a
checkout run in place.  The GPU loader reads them from here; nothing imports CuPy."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def source_dir() -> Path:
    """The folder holding the ``*.cu`` / ``*.cuh`` sources."""
    try:
        path = Path(str(resources.files("gpuconv.kernels_cuda")))
        if path.is_dir():
            return path
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "kernels_cuda"


def sources() -> list[Path]:
    """Every kernel source file, sorted by name."""
    d = source_dir()
    return sorted(p for p in d.iterdir() if p.suffix in (".cu", ".cuh"))
