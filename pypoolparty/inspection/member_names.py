"""What :mod:`pypoolparty.reducer` calls the members of the archives it folds into.

By archive, with what each member holds::

    results.zip     <ichunk>.pickle          outcome of a chunk whose tasks all succeeded
                                             (its name in outcomes/ too)
                    <ichunk>.failed.pickle   outcome of a chunk with failed tasks
    exceptions.zip  <itask>.txt              a failed task, as the reducer describes it
    stdout.zip,     <ichunk>.txt             output of the job whose outcome was folded
    stderr.zip      <ichunk>.attempt<n>.txt  output of the job that failed at the
                                             scheduler as the chunk's attempt n
"""

from __future__ import annotations

import re

from ..reducer import OUTCOME_NAME

SUCCEEDED_OUTCOME = OUTCOME_NAME
FAILED_OUTCOME = re.compile(r"^(\d+)\.failed\.pickle$")
TASK_FAILURE = re.compile(r"^(\d+)\.txt$")
FAILED_ATTEMPT = re.compile(r"^(\d+)\.attempt(\d+)\.txt$")


def job_output(ichunk: int) -> str:
    """The member with the output of the job whose outcome of ``ichunk`` was folded."""
    return f"{ichunk}.txt"


def failed_attempt(ichunk: int, attempt: int) -> str:
    """The member with the output of the job of ``ichunk`` that failed as ``attempt``."""
    return f"{ichunk}.attempt{attempt}.txt"
