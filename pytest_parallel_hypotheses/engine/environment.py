"""The environment a hypothesis script starts with."""

from __future__ import annotations

import os
from typing import Dict, Mapping, Optional

#: The prefix of pytest's own variables (``PYTEST_ADDOPTS``, ``PYTEST_CURRENT_TEST``, ...).
PYTEST_PREFIX = "PYTEST_"


def without_pytest_variables(environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """``environ`` (default: this process's) minus pytest's own variables: they would change
    what a pytest run inside a script collects and how it reports."""
    source = os.environ if environ is None else environ
    return {k: v for k, v in source.items() if not k.startswith(PYTEST_PREFIX)}
