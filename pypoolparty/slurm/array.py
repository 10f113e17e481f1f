"""``pypoolparty.slurm.array.Pool``: one ``sbatch --array`` per map.

This public module holds the array pool itself (rather than re-exporting it
from :mod:`.pool`) so that its name reads as users import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import checks
from ..scheduler import Scheduler
from ..signatures import with_inherited_options
from .pool import SlurmPool, SlurmPoolOptions
from .scheduler import ArrayScheduler

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["Pool"]


@with_inherited_options(scheduler="slurm")
class Pool(SlurmPool):
    """Run ``func`` over many tasks as one SLURM job array; task ``i`` runs chunk ``i``.

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
        **options: Unpack[SlurmPoolOptions],
    ) -> None:
        super().__init__(num_simultaneously_running_tasks, **options)
        self.max_array_size = checks.optional_whole_number("max_array_size", max_array_size, 2)

    def _make_scheduler(self) -> Scheduler:
        return ArrayScheduler(
            self.sbatch_options,
            self.retry_policy,
            self.command_paths,
            max_array_size=self.max_array_size,
        )
