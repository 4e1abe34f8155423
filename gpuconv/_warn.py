"""Warnings that point at the user's line, not at gpuconv's."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside gpuconv (a fixed
    level is wrong for a warning raised at different depths, e.g. at the first dispatch)."""
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is the frame calling this function
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
