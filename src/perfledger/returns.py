"""The public name of :mod:`perfledger.stats.returns` (documented as
``perfledger.returns.from_returns``): metrics computed from a return series."""

from .stats.returns import *  # noqa: F403  (the documented names, exactly)
from .stats.returns import __all__  # noqa: F401
