"""The examples in the public docstrings run and print what they say."""

import doctest
import importlib

import numpy as np
import pytest

import gpuconv

MODULES = ["gpuconv.signal", "gpuconv.nn", "gpuconv.dispatch", "gpuconv._spec", "gpuconv._tune",
           "gpuconv._bench"]  # fmt: skip


@pytest.mark.parametrize("name", MODULES + ["gpuconv.dask"])
def test_docstring_examples(name):
    if name == "gpuconv.dask":
        pytest.importorskip("dask.array")
    module = importlib.import_module(name)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(module, extraglobs={"np": np, "gpuconv": gpuconv}, optionflags=flags)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed"


def test_every_public_function_has_an_example():
    missing = []
    for name in gpuconv.__all__:
        obj = getattr(gpuconv, name)
        if callable(obj) and not isinstance(obj, type) and ">>>" not in (obj.__doc__ or ""):
            missing.append(name)
    assert not missing, f"public functions without an example: {missing}"
