"""CUDA C sources of gpuconv's GPU kernels, shipped as package data (gpuconv.kernels_cuda)."""
