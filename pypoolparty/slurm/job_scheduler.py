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
        comment = chunk_comment(ichunk)
        options = [
            f"--comment={comment}",
            *self.common_sbatch_options(name, directory, f"{name}_{ichunk}"),
        ]
        if waits_for is not None:
            options.append(f"--dependency=afterany:{waits_for}")
        command = submission.worker.shell_command(ichunk=ichunk)
        jobid = self.sbatch(options, command, lambda: self._find_jobs(name).get(comment))
        return job_of(submission, ichunk, jobid)

    def recover(self, submission: Submission) -> list[Job]:
        """The jobs of ``submission`` that squeue still lists, found by their comments."""
        found = self._find_jobs(submission.job_name)
        return [
            job_of(submission, ichunk, found[chunk_comment(ichunk)])
            for ichunk in submission.chunks
            if chunk_comment(ichunk) in found
        ]

    def _find_jobs(self, job_name: str) -> dict[str, str]:
        """Comment -> job id of the jobs named ``job_name`` that squeue lists."""
        return self.squeue_by_names(
            [job_name], parsing.SQUEUE_COMMENT_FORMAT, parsing.jobs_with_comment
        )


def job_of(submission: Submission, ichunk: int, jobid: str) -> Job:
    stem = os.path.join(submission.directory, f"{submission.job_name}_{ichunk}")
    return Job(jobid, ichunk, f"{stem}.stdout", f"{stem}.stderr")


def chunk_comment(ichunk: int) -> str:
    return f"pypoolparty chunk {ichunk}"
