"""Local processes as the jobs of a pool: ``pypoolparty.local.Pool``."""

from .pool import Pool

__all__ = ["Pool"]
