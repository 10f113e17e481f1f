"""Short name of :mod:`pypoolparty.sun_grid_engine`: ``pypoolparty.sge.Pool``."""

from __future__ import annotations

from .sun_grid_engine import Pool

__all__ = ["Pool"]
