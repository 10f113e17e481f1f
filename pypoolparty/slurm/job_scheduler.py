"""SLURM adapter that submits one ``sbatch`` job per chunk, for sites without arrays.

SLURM has no throttle for separate jobs, so ``num_simultaneously_running``
is kept with dependencies: the jobs form that many lanes, and each job waits
for the one before it in its lane to end (``--dependency=afterany:ID``).
"""

from __future__ import annotations

import os

from ..scheduler import Job, Submission
from . import parsing
from .queue import SlurmQueue


class JobScheduler(SlurmQueue):
    """One ``sbatch`` per chunk; the job's comment names its chunk."""

    def submit(self, submission: Submission) -> list[Job]:
        lanes = submission.num_simultaneously_running
        jobs: list[Job] = []
        for ichunk in submission.chunks:
            waits_for = jobs[-lanes].jobid if lanes and len(jobs) >= lanes else None
            jobs.append(self._submit_chunk(submission, ichunk, waits_for))
        return jobs

    def _submit_chunk(self, submission: Submission, ichunk: int, waits_for: str | None) -> Job:
        name, directory = submission.job_name, submission.directory
        stem = f"{name}_{ichunk}"
        comment = chunk_comment(ichunk)
        options = [f"--comment={comment}", *self.common_sbatch_options(name, directory, stem)]
        if waits_for is not None:
            options.append(f"--dependency=afterany:{waits_for}")
        command = submission.worker.shell_command(ichunk=ichunk)
        jobid = self.sbatch(options, command, lambda: self._find_job(name, comment))
        stdout, stderr = (
            os.path.join(directory, f"{stem}.{suffix}") for suffix in ("stdout", "stderr")
        )
        return Job(jobid, ichunk, stdout, stderr)

    def _find_job(self, job_name: str, comment: str) -> str | None:
        """The id of the job for this chunk if an earlier attempt created one."""
        found = self.squeue_by_names(
            [job_name], parsing.SQUEUE_COMMENT_FORMAT, parsing.jobs_with_comment
        )
        return found.get(comment)


def chunk_comment(ichunk: int) -> str:
    return f"pypoolparty chunk {ichunk}"
