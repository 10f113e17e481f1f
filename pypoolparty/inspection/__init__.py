"""Read a work_dir without the process that made it: plain data for the CLI.

Everything here only reads. It works on a kept work_dir and on one whose map
is still running, where files change underneath: the event log may end in a
line still being written, an archive may be in the middle of an append, an
outcome may be folded away between listing and opening it. Every reader
tolerates that and reports what was there at the moment it looked.

It never opens ``environment.sh`` (values of the user's environment), and it
unpickles plain data only: pickles are code, and looking at a work_dir must
not run any.

Memory stays proportional to the number of chunks (a few bytes each), not to
the length of the log or the size of the archives: the log is streamed line
by line and the zip archives are read member by member.

It keeps no copy of any on-disk format: it reads through their owners,
:mod:`pypoolparty.work_dir` (names, ``session.json``, the lock),
:mod:`pypoolparty.event_log`, :mod:`pypoolparty.archive` and
:mod:`pypoolparty.outcome`, which the map writes with.

The modules, from the files up:

- :mod:`.sessions`: the maps in a work_dir, and what each one is;
- :mod:`.outcomes`: where the workers' outcomes are, read as plain data;
- :mod:`.chunk_states`: each chunk's state, replayed from the log;
- :mod:`.process`: whether a map runs now;
- :mod:`.status`, :mod:`.failures`, :mod:`.job_outputs`, :mod:`.timeline`:
  what ``pypoolparty status``, ``errors``, ``stdout``/``stderr`` and
  ``timeline`` show.
"""

from .chunk_states import (
    CANCELLED,
    CHUNK_STATES,
    DONE,
    ENDED,
    ERROR,
    GONE,
    HELD,
    JOB_FAILED,
    NOT_SUBMITTED,
    PENDING,
    QUEUED,
    RUNNING,
    SUBMITTING,
    UNKNOWN,
)
from .failures import SchedulerTrouble, scheduler_trouble, task_failures
from .job_outputs import FINISHED as FINISHED_TASK
from .job_outputs import RUNNING as RUNNING_TASK
from .job_outputs import WAITING as WAITING_TASK
from .job_outputs import JobOutput, NotRecorded, TaskOutOfRange, job_output
from .process import ProcessState
from .sessions import NotAWorkDir, SessionInfo, find_sessions, only_session
from .status import MAX_LISTED_STUCK_CHUNKS, SessionStatus, session_status
from .timeline import (
    ChromeTrace,
    chrome_trace,
    chunk_runs,
    current_map_session,
    tasklist_trace,
)

# What the command line (pypoolparty.cli) uses; the types the functions
# return and yield are in their modules.
__all__ = [
    "CANCELLED",
    "CHUNK_STATES",
    "DONE",
    "ENDED",
    "ERROR",
    "FINISHED_TASK",
    "GONE",
    "HELD",
    "JOB_FAILED",
    "MAX_LISTED_STUCK_CHUNKS",
    "NOT_SUBMITTED",
    "PENDING",
    "QUEUED",
    "RUNNING",
    "RUNNING_TASK",
    "SUBMITTING",
    "UNKNOWN",
    "WAITING_TASK",
    "ChromeTrace",
    "JobOutput",
    "NotAWorkDir",
    "NotRecorded",
    "ProcessState",
    "SchedulerTrouble",
    "SessionInfo",
    "SessionStatus",
    "TaskOutOfRange",
    "chrome_trace",
    "chunk_runs",
    "current_map_session",
    "find_sessions",
    "job_output",
    "only_session",
    "scheduler_trouble",
    "session_status",
    "task_failures",
    "tasklist_trace",
]
