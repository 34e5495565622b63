"""``python -m pytest_parallel_hypotheses``: the same command as ``pytest-hypotheses``."""

from .cli import main

raise SystemExit(main())
