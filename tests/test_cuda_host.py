"""The CPU runner of the CUDA kernel sources (tests/cuda_host) finds what it claims to find: a
write outside an array, and a missing barrier once the threads of a phase run in another order."""

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("host_kernels")

# Each thread stores its value, then reads its left neighbour's. With the barrier this is a
# shift; without it, a thread reads its neighbour's slot before or after the neighbour wrote it,
# depending on which of the two ran first in the phase.
SHIFT = r"""
extern "C" __global__ void shift(const float* x, float* y, int n)
{
    __shared__ float s[256];
    const int t = threadIdx.x;
    const int i = blockIdx.x * blockDim.x + t;
    s[t] = i < n ? x[i] : 0.0f;
    BARRIER
    if (i < n) y[i] = t > 0 ? s[t - 1] : -1.0f;
}
"""

OUT_OF_BOUNDS = r"""
extern "C" __global__ void past_end(float* y, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) y[i] = 1.0f;
}
"""


def _shift(cuda_host, barrier: bool, order: str, monkeypatch) -> np.ndarray:
    monkeypatch.setenv("GPUCONV_HOST_ORDER", order)
    code = SHIFT.replace("BARRIER", "__syncthreads();" if barrier else "")
    lib = cuda_host.build(code)
    n = 600
    x = np.arange(1, n + 1, dtype=np.float32)
    y = np.full(n, np.nan, np.float32)
    cuda_host.launch(lib, "shift", (3, 1, 1), (256, 1, 1), [x, y, np.int32(n)], may_sync=True)
    return y


def _expected(n=600, block=256):
    i = np.arange(n)
    return np.where(i % block == 0, -1.0, i).astype(np.float32)  # x[i - 1] == i


@pytest.mark.parametrize("order", ["plain", "reverse", "shuffle"])
def test_a_correct_kernel_gives_one_result_in_every_order(host_kernels, order, monkeypatch):
    np.testing.assert_array_equal(_shift(host_kernels, True, order, monkeypatch), _expected())


def test_a_missing_barrier_shows_in_another_order(host_kernels, monkeypatch):
    # in plain order thread t - 1 always ran first, so the race is invisible there ...
    plain = _shift(host_kernels, False, "plain", monkeypatch)
    np.testing.assert_array_equal(plain, _expected())
    # ... and shows as soon as the threads of the phase run in another order
    for order in ("reverse", "shuffle"):
        y = _shift(host_kernels, False, order, monkeypatch)
        assert not np.array_equal(y, _expected()), order


def test_an_unknown_order_is_refused(host_kernels, monkeypatch):
    with pytest.raises(AssertionError, match="GPUCONV_HOST_ORDER"):
        _shift(host_kernels, True, "sideways", monkeypatch)


def test_a_write_past_the_end_is_caught(host_kernels):
    if host_kernels.ASAN:
        pytest.skip("under AddressSanitizer the write ends the process (ci/host-asan.sh)")
    lib = host_kernels.build(OUT_OF_BOUNDS)
    y = np.zeros(100, np.float32)
    with pytest.raises(AssertionError, match="outside the array"):
        host_kernels.launch(lib, "past_end", (1, 1, 1), (128, 1, 1), [y, np.int32(100)], False)


VECTOR_LOAD = r"""
extern "C" __global__ void vector_load(const float* x, float* y, int offset)
{
    const int4 v = __ldg(reinterpret_cast<const int4*>(x + offset));
    y[0] = x[offset] + (v.x != 0 ? 0.0f : 0.0f);
}
"""


def test_a_misaligned_vector_load_is_caught(host_kernels):
    lib = host_kernels.build(VECTOR_LOAD)
    x = np.arange(16, dtype=np.float32)
    y = np.zeros(1, np.float32)
    shift = 1 if host_kernels.MISALIGN else 0  # the array itself starts one element off
    host_kernels.launch(
        lib, "vector_load", (1, 1, 1), (1, 1, 1), [x, y, np.int32(4 - shift)], False
    )
    assert y[0] == 4 - shift
    with pytest.raises(AssertionError, match="misaligned"):
        host_kernels.launch(lib, "vector_load", (1, 1, 1), (1, 1, 1), [x, y, np.int32(5 - shift)],
                            False)  # fmt: skip
