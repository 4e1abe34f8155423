// const_filter.cuh: the __constant__ filter buffer of the single-channel fast direct kernels.
//
// Raw storage reinterpreted per dtype, so a module uses 8 * MAX_FILTER bytes of constant memory
// whatever its dtypes.  A filter of E elements of S bytes fits when E * S <= 8 * MAX_FILTER; the
// host writes w~ (spatially flipped for convolution) at offset 0 with
// module.get_global("c_filter") and passes a NULL `w` to the kernel.
#pragma once

#include "common.cuh"

#ifndef MAX_FILTER
#define MAX_FILTER 4096       // constant filter buffer, in 8-byte words (32 KiB)
#endif

__constant__ __align__(16) double c_filter[MAX_FILTER];

// Tap j of the filter: from c_filter when w is NULL (the same address for every thread: one
// broadcast read), else from w through the read-only cache.
template <typename T>
__device__ __forceinline__ T filter_tap_at(const T* __restrict__ w, int j)
{
    return w ? ldg(w + j) : reinterpret_cast<const T*>(c_filter)[j];
}
