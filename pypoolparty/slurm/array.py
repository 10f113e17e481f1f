"""``pypoolparty.slurm.array.Pool``: one ``sbatch --array`` per map."""

from __future__ import annotations

from typing import Any

from ..scheduler import Scheduler
from .array_scheduler import ArrayScheduler
from .pool_options import SlurmPool

__all__ = ["Pool"]


class Pool(SlurmPool):
    """Run ``func`` over many tasks as one SLURM job array; task ``i`` runs chunk ``i``.

    Takes the options of :class:`pypoolparty.slurm.pool_options.SlurmPool`,
    and:

    Parameters
    ----------
    max_array_size : int, optional
        The site's ``MaxArraySize`` (array indices must be below it); chunks
        beyond it go into further arrays. Default: read from
        ``scontrol show config``, else SLURM's default 1001. The throttle
        ``num_simultaneously_running_tasks`` holds per array.
    """

    def __init__(
        self,
        num_simultaneously_running_tasks: int | None = None,
        *,
        max_array_size: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(num_simultaneously_running_tasks, **options)
        if max_array_size is not None and (
            isinstance(max_array_size, bool)
            or not isinstance(max_array_size, int)
            or max_array_size < 2
        ):
            raise ValueError(f"max_array_size must be a whole number >= 2, not {max_array_size!r}")
        self.max_array_size = max_array_size

    def _make_scheduler(self) -> Scheduler:
        return ArrayScheduler(
            self.resources, self.commands, self.retry_policy, max_array_size=self.max_array_size
        )
