"""Earlier home of :mod:`pytest_parallel_hypotheses.core.classification`, kept so that code and
documentation naming this module path keep working."""

from .core.classification import *  # noqa: F403
from .core.classification import __all__ as __all__
