"""Sun Grid Engine (and its successors Son of / Open / Univa Grid Engine).

``pypoolparty.sun_grid_engine.Pool`` submits one ``qsub -t`` array job per
map; each array task runs one chunk of the tasks.
"""

from .pool import Pool

__all__ = ["Pool"]
