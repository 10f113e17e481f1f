"""Which environment variables the jobs get, and which they never overwrite.

The submitting process's environment is exported to a private file in the
work_dir (0600), never into a job script, a scheduler argument or a log,
because it may hold secrets. The job's launcher exports it before the
worker's interpreter starts (see :mod:`pypoolparty.launcher`, which writes
the file), so what a job sees does not depend on how a site configured its
scheduler, and ``LD_LIBRARY_PATH`` or ``PYTHONPATH`` act as under
:mod:`multiprocessing`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os

# Variables that describe the submit host or the job that runs the worker.
# Copying them from the submit host would lie to the job (or break it), so
# they are never exported by default and never overwritten in the job (the
# launcher leaves them out whatever the selection). docs/job_environment.rst
# lists them.
HOST_AND_JOB_PATTERNS: tuple[str, ...] = (
    "SLURM_*",
    "SLURMD_*",
    "SBATCH_*",
    "SRUN_*",
    "SALLOC_*",
    "SGE_*",
    "JOB_ID",
    "JOB_NAME",
    "JOB_SCRIPT",
    "TASK_ID",
    "NSLOTS",
    "NHOSTS",
    "NQUEUES",
    "QUEUE",
    "PE",
    "PE_HOSTFILE",
    "RESTARTED",
    "ENVIRONMENT",
    "ARC",
    "REQUEST",
    "_CONDOR_*",
    "CONDOR_*",
    "BATCH_SYSTEM",
    "PBS_*",
    "LSB_*",
    "TMPDIR",
    "TMP",
    "TEMP",
    "HOSTNAME",
    "HOST",
    "CUDA_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    "ROCR_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "PYTHON_CPU_COUNT",
    "DISPLAY",
    "SSH_*",
    "XDG_RUNTIME_DIR",
    "XDG_SESSION_*",
    "DBUS_SESSION_BUS_ADDRESS",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "_",
    "PYPOOLPARTY_*",
)


def belongs_to_host_or_job(name: str) -> bool:
    """True for variables that describe the host or the job, e.g. ``SLURM_JOB_ID``."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in HOST_AND_JOB_PATTERNS)


@dataclasses.dataclass(frozen=True)
class Selection:
    """Which variables of the submitting process to export.

    ``mode`` is ``"default"`` (all but host and job variables), ``"all"``,
    ``"none"``, or ``"names"`` (exactly ``names``).
    """

    mode: str
    names: tuple[str, ...] = ()

    @classmethod
    def parse(cls, selection: str | list[str] | tuple[str, ...]) -> Selection:
        if isinstance(selection, str):
            if selection not in ("default", "all", "none"):
                raise ValueError(
                    "environment must be 'default', 'all', 'none' or a list of variable "
                    f"names, not {selection!r}"
                )
            return cls(mode=selection)
        names = tuple(selection)
        for name in names:
            if not isinstance(name, str) or not name or "=" in name:
                raise ValueError(f"environment names must be variable names, not {name!r}")
        return cls(mode="names", names=names)

    def select(self, environ: dict[str, str]) -> dict[str, str]:
        """Return the variables of ``environ`` to export."""
        if self.mode == "none":
            return {}
        if self.mode == "all":
            return dict(environ)
        if self.mode == "names":
            return {name: environ[name] for name in self.names if name in environ}
        return {k: v for k, v in environ.items() if not belongs_to_host_or_job(k)}


def export(selection: Selection, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables to write into the work_dir for the worker."""
    return selection.select(dict(os.environ if environ is None else environ))
