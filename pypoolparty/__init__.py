"""pypoolparty: a ``multiprocessing.Pool`` whose workers are batch-scheduler jobs.

Replace ``multiprocessing.Pool()`` with one of

- ``pypoolparty.local.Pool()``: local processes, no cluster needed;
- ``pypoolparty.slurm.array.Pool()``: one SLURM job array per map;
- ``pypoolparty.slurm.Pool()``: one SLURM job per chunk;
- ``pypoolparty.sun_grid_engine.Pool()`` (or ``pypoolparty.sge.Pool()``);
- ``pypoolparty.htcondor.Pool()``;

and ``pool.map(func, tasks)`` runs on the cluster.
"""

from . import checkpoint, htcondor, local, sge, slurm, sun_grid_engine
from .container import Container
from .errors import (
    BadInput,
    Cancelled,
    InterpreterMismatch,
    JobCannotRun,
    PendingTimeout,
    PoolError,
    RemoteTraceback,
    ResubmissionsExhausted,
    SchedulerError,
    SchedulerUnavailable,
    SubmissionRejected,
    TaskCrashed,
    TaskError,
    Terminated,
    TimeLimitTooShort,
    UnknownOption,
    Unpicklable,
    WorkDirError,
)
from .input_files import InputFile
from .shell_commands import ShellResult, shell
from .task_outputs import output_dir
from .version import __version__

__all__ = [
    "BadInput",
    "Cancelled",
    "Container",
    "InputFile",
    "InterpreterMismatch",
    "JobCannotRun",
    "PendingTimeout",
    "PoolError",
    "RemoteTraceback",
    "ResubmissionsExhausted",
    "SchedulerError",
    "SchedulerUnavailable",
    "ShellResult",
    "SubmissionRejected",
    "TaskCrashed",
    "TaskError",
    "Terminated",
    "TimeLimitTooShort",
    "UnknownOption",
    "Unpicklable",
    "WorkDirError",
    "__version__",
    "checkpoint",
    "htcondor",
    "local",
    "output_dir",
    "sge",
    "shell",
    "slurm",
    "sun_grid_engine",
]
