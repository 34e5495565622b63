"""Earlier home of :mod:`pytest_parallel_hypotheses.core.halting`, kept so that code and
documentation naming this module path keep working."""

from .core.halting import *  # noqa: F403
from .core.halting import __all__ as __all__
