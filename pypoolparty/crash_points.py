"""Places where tests kill the submitting process on purpose.

Resuming must work whenever the submitting process dies. To test that at
the moments that matter, the session calls :func:`reached` at a few named
points; if the environment variable ``PYPOOLPARTY_CRASH_AT`` names that
point, the process kills itself with SIGKILL, exactly as ``kill -9`` would.
The variable is never exported to workers (``PYPOOLPARTY_*`` is a host
variable), so it cannot affect jobs.

Points: ``before_submit`` (work_dir ready, nothing submitted),
``during_submit`` (jobs submitted, their ids not yet logged),
``after_submit`` (jobs submitted and logged), ``during_fold`` (results
archived, their outcome files not yet deleted).
"""

from __future__ import annotations

import os
import signal

VARIABLE = "PYPOOLPARTY_CRASH_AT"
POINTS = ("before_submit", "during_submit", "after_submit", "during_fold")


def reached(point: str) -> None:
    """Die here, as if killed, when the environment asks for ``point``."""
    if os.environ.get(VARIABLE) == point:
        os.kill(os.getpid(), signal.SIGKILL)
