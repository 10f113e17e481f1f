"""Run maps as HTCondor clusters: ``pypoolparty.htcondor.Pool()``."""

from .pool import Pool

__all__ = ["Pool"]
