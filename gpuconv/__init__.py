"""gpuconv: fast convolutions on CPU and GPU behind one API."""
