"""GPU (CuPy) back end of gpuconv: CUDA kernels compiled at run time; importing this imports no CuPy."""
