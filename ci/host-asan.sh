#!/usr/bin/env bash
# The CUDA kernels run on the CPU (tests/cuda_host) under AddressSanitizer: the kernels are built
# with -fsanitize=address and the guard zones around every array are poisoned, so a read or a
# write outside an array stops the run with ASan's report -- the host's stand-in for
# compute-sanitizer memcheck, which needs a GPU (ci/gpu-check).  The same run shuffles the order
# of the threads in every barrier phase and runs the blocks backwards (GPUCONV_HOST_ORDER=shuffle;
# the plain test run keeps thread 0 first), so a missing __syncthreads changes a result and fails
# a test: the host's stand-in for racecheck.  And every array starts one element off the 16-byte
# boundary (GPUCONV_HOST_MISALIGN=1, as a CuPy view x[1:] does): the kernels' scalar fallbacks
# run, and a vector access their alignment checks let through fails (the plain run keeps the
# arrays aligned, so the vector paths run there).
# Run from the checkout in an environment with gpuconv's test extra: ci/host-asan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python}
asan=$(gcc -print-file-name=libasan.so)
if [ ! -e "$asan" ]; then
  echo "libasan not found next to gcc: skipping the AddressSanitizer run" >&2
  exit 0
fi
# -s: an ASan report ends the process, and pytest's captured output would go with it; nvcc
# (the compile tests) must not run with the ASan runtime preloaded
LD_PRELOAD="$asan" ASAN_OPTIONS=detect_leaks=0 GPUCONV_HOST_ASAN=1 GPUCONV_HOST_ORDER=shuffle GPUCONV_HOST_MISALIGN=1 \
  "$py" -m pytest -q -s -p no:cacheprovider \
  tests/test_gpu_infra.py tests/test_gpu.py tests/test_gpu_separable.py \
  tests/test_gpu_overlap_add.py tests/test_gpu_implicit_gemm.py tests/test_gpu_fuzz.py \
  tests/test_gpu_routing.py tests/test_cuda_host.py \
  -k "not cuda and not compile and not spill and not nvcc"
