"""Warnings that point at the user's line, not at gpuconv's."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _internal(frame) -> bool:
    """Import machinery, which ``warnings.warn`` leaves out when it counts stack levels."""
    name = frame.f_code.co_filename
    return "importlib" in name and "_bootstrap" in name


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside gpuconv (a fixed
    level is wrong for a warning raised at different depths: at the first dispatch, or while
    ``import gpuconv`` reads the tuned constants)."""
    level, frame = 1, sys._getframe(0)
    while True:  # one level per frame warnings.warn counts, as it counts them
        frame = frame.f_back
        while frame is not None and _internal(frame):
            frame = frame.f_back
        level += 1
        if frame is None or not frame.f_code.co_filename.startswith(_PACKAGE):
            break
    warnings.warn(message, category, stacklevel=level)
