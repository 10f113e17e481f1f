"""SLURM adapter that submits all chunks of a submission as one job array.

Array task index == chunk index, so a resubmission of chunks 3, 7 and 12 is
``sbatch --array=3,7,12``. SLURM refuses indices of ``MaxArraySize`` or more;
chunks beyond it go into further arrays whose task ``i`` runs the chunk on line
``i`` of a chunk list file.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from .. import commands
from ..scheduler import Job, Submission
from . import parsing
from .queue import SlurmQueue, submission_order

logger = logging.getLogger(__name__)

# SLURM's own default MaxArraySize, for sites where scontrol does not answer.
DEFAULT_MAX_ARRAY_SIZE = 1001
TASK_ID_VARIABLE = "SLURM_ARRAY_TASK_ID"


@dataclasses.dataclass(frozen=True)
class Piece:
    """One ``sbatch --array`` call: which chunk each array index runs."""

    job_name: str
    chunk_of_index: dict[int, int]
    chunk_list_path: str | None = None
    """``None``: the index is the chunk. Else the file listing the chunks, one a line."""


class ArrayScheduler(SlurmQueue):
    """One ``sbatch --array`` per submission (more only beyond ``MaxArraySize``)."""

    def __init__(self, *args, max_array_size: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._max_array_size = max_array_size

    def submit(self, submission: Submission) -> list[Job]:
        jobs = []
        for piece in split(submission, self.max_array_size()):
            jobs += self._submit_piece(submission, piece)
        return submission_order(submission, jobs)

    def max_array_size(self) -> int:
        """The option if given, else the site's ``MaxArraySize`` (asked once)."""
        if self._max_array_size is None:
            # Remember only the site's answer: a failed look is tried again next time.
            self._max_array_size = self._site_max_array_size()
        return self._max_array_size or DEFAULT_MAX_ARRAY_SIZE

    def _site_max_array_size(self) -> int | None:
        try:
            completed = commands.run([self.paths.scontrol, "show", "config"], self.policy.timeout)
            return parsing.max_array_size(parsing.scontrol_config(completed))
        except (
            commands.CommandNotFound,
            commands.CommandTimedOut,
            commands.TransientError,
            commands.PermanentError,
        ) as error:
            logger.info("cannot read MaxArraySize, assuming %d: %s", DEFAULT_MAX_ARRAY_SIZE, error)
        return None

    def _submit_piece(self, submission: Submission, piece: Piece) -> list[Job]:
        directory = submission.directory
        stem = f"{piece.job_name}_%a"
        if piece.chunk_list_path is None:
            command = submission.worker.shell_command(ichunk_from_env=TASK_ID_VARIABLE)
        else:
            write_chunk_list(piece)
            command = submission.worker.shell_command(
                ichunk_from_env=TASK_ID_VARIABLE, chunk_list_path=piece.chunk_list_path
            )
        array = parsing.index_expression(piece.chunk_of_index)
        if submission.num_simultaneously_running:
            array += f"%{submission.num_simultaneously_running}"
        options = [f"--array={array}", *self.common_sbatch_options(piece.job_name, directory, stem)]
        array_job_id = self.sbatch(options, command, lambda: self._find_array(piece.job_name))
        return jobs_of(piece, directory, array_job_id)

    def recover(self, submission: Submission) -> list[Job]:
        """The array tasks of ``submission`` from the arrays squeue still lists."""
        jobs = []
        for piece in split(submission, self.max_array_size()):
            array_job_id = self._find_array(piece.job_name)
            if array_job_id is not None:
                jobs += jobs_of(piece, submission.directory, array_job_id)
        return jobs

    def _find_array(self, job_name: str) -> str | None:
        """The id of an array named ``job_name`` if an earlier attempt created one."""
        records = self.squeue_by_names([job_name], parsing.SQUEUE_FORMAT, parsing.squeue_records)
        return records[0].array_job_id if records else None


def split(submission: Submission, max_array_size: int) -> list[Piece]:
    """Split the chunks into arrays SLURM accepts (indices below ``max_array_size``)."""
    direct = [ichunk for ichunk in submission.chunks if ichunk < max_array_size]
    beyond = [ichunk for ichunk in submission.chunks if ichunk >= max_array_size]
    pieces = []
    if direct:
        pieces.append(Piece(submission.job_name, {ichunk: ichunk for ichunk in direct}))
    per_piece = max_array_size - 1  # list indices start at 1
    for number, start in enumerate(range(0, len(beyond), per_piece), start=1):
        chunks = beyond[start : start + per_piece]
        job_name = f"{submission.job_name}.{number}"
        path = os.path.join(submission.directory, f"{job_name}.chunks")
        pieces.append(Piece(job_name, dict(enumerate(chunks, start=1)), path))
    return pieces


def jobs_of(piece: Piece, directory: str, array_job_id: str) -> list[Job]:
    """The job of each chunk of ``piece`` once sbatch made it array ``array_job_id``."""

    def output(index: int, suffix: str) -> str:
        return os.path.join(directory, f"{piece.job_name}_{index}.{suffix}")

    return [
        Job(f"{array_job_id}_{index}", ichunk, output(index, "stdout"), output(index, "stderr"))
        for index, ichunk in piece.chunk_of_index.items()
    ]


def write_chunk_list(piece: Piece) -> None:
    """Write the chunk list of ``piece``: line ``i`` holds the chunk of task ``i``."""
    text = "".join(f"{piece.chunk_of_index[i]}\n" for i in sorted(piece.chunk_of_index))
    partial = piece.chunk_list_path + ".part"
    with open(partial, "w") as file:
        file.write(text)
    os.replace(partial, piece.chunk_list_path)
