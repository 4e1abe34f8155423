"""``python -m gpuconv``: the ``gpuconv`` command (bench, tune, info)."""

from .cli import main

raise SystemExit(main())
