#!/usr/bin/env bash
# What CI runs on a fresh machine with only Python, pip, gcc and nvcc:
#   1. lint (ruff), 2. the README's test command in a fresh virtual environment,
#   3. the GPU tests' [host] half again under AddressSanitizer (ci/host-asan.sh),
#   4. every kernel variant compiled by NVRTC 12 (CuPy's run-time compiler) with the loader's
#      options, 5. the built wheel installed in a second fresh environment ships the CUDA
#      sources, 6. every CUDA kernel source compiled with nvcc for sm_80 and sm_90 (ptxas report).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
py=${PYTHON:-python3}

echo "== fresh virtual environment: pip install .[test]"
"$py" -m venv "$work/venv"
. "$work/venv/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q ".[test]" ruff==0.17.6  # pinned: format --check must match the formatter used
# torch is the second oracle of the nn tests (skipped without it). Only a CPU wheel already on
# this machine is used: asking PyPI for torch would pull a CUDA build of several GB.
torch_wheel=$(ls /opt/wheels/torch-*+cpu-cp"$(python -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"-*.whl 2>/dev/null | head -1 || true)
if [ -n "$torch_wheel" ]; then
  echo "== torch oracle: installing $(basename "$torch_wheel")"
  python -m pip install -q "$torch_wheel" || echo "torch did not install: its oracle tests will skip"
else
  echo "== no CPU torch wheel on this machine: the torch oracle tests will skip"
fi

echo "== ruff"
ruff check gpuconv tests bench ci
ruff format --check gpuconv tests bench ci

echo "== tests (the README's test command)"
python -m pytest -q

echo "== the CUDA kernels on the CPU under AddressSanitizer"
ci/host-asan.sh

echo "== NVRTC, CuPy's run-time compiler (CUDA 12, as cupy-cuda12x uses): every kernel variant"
# nvcc (below) is CUDA 13; NVRTC 12 differs (without -default-device it refuses the unannotated
# lambdas of the fast direct kernel), and it is what compiles the kernels on a user's GPU
if python -m pip install -q "nvidia-cuda-nvrtc-cu12>=12.4"; then
  nvrtc=$(python - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("nvidia.cuda_nvrtc")
print(next(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("lib/libnvrtc.so.*")))
PY
)
  python ci/check_kernels.py --nvrtc "$nvrtc"
else
  echo "nvidia-cuda-nvrtc-cu12 did not install (no registry?): NVRTC check skipped" >&2
fi

echo "== the wheel ships kernels_cuda"
python -m pip wheel -q --no-deps -w "$work/dist" .
"$py" -m venv "$work/wheelenv"
"$work/wheelenv/bin/python" -m pip install -q "$work"/dist/gpuconv-*.whl
(cd "$work" && "$work/wheelenv/bin/python" - <<'PY'
import gpuconv, numpy as np
from gpuconv import _kernels
d = _kernels.source_dir()
files = [p.name for p in _kernels.sources()]
assert "site-packages" in str(d), d
assert any(f.endswith(".cu") for f in files), files
assert np.allclose(gpuconv.convolve([1.0, 2.0], [1.0, 1.0]), [1, 3, 2])
print(f"installed wheel: {len(files)} kernel sources in {d}")
PY
)
deactivate

if ls kernels_cuda/*.cu >/dev/null 2>&1; then
  if command -v nvcc >/dev/null 2>&1; then
    echo "== nvcc: every kernel for sm_80 and sm_90"
    "$py" ci/check_kernels.py
  else
    echo "nvcc not found: the kernel compile check needs the CUDA toolkit" >&2
    exit 1
  fi
fi
echo "== CI passed"
