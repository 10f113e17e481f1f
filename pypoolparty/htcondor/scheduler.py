"""The HTCondor adapter: one cluster per submission, one proc per chunk.

Submit writes one submit file with ``queue ichunk in (...)`` and calls
``condor_submit -terse`` once. Proc ``i`` of the cluster runs the ``i``-th
chunk of the submission. The state of the procs comes from the job event log
that HTCondor writes for the cluster into the submission's directory, read
incrementally; one ``condor_q`` per poll cross-checks it (procs that vanish
from the queue without a word in the log, states the log cannot tell).

Each submission's event log is in its directory, beside the procs' output
files, so a new adapter (after a restart of the submitting process) finds it
from the jobs alone and rebuilds the state by reading it from its start.

Without a shared file system (``ClusterOptions.shared_file_system`` false),
each proc's files travel with it (:mod:`pypoolparty.job_files`) through the
schedd's spool (:mod:`.spool`): submit stages each chunk's own inputs and
calls ``condor_submit -spool``; each query fetches the output of the procs
that completed (``condor_transfer_data``), which then leave the queue. The
state then comes from ``condor_q`` alone: spooled procs stay in the queue
until fetched, also while no submitting process runs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pwd
import shutil
from collections import defaultdict
from collections.abc import Sequence

from .. import commands, job_files
from ..scheduler import Job, JobState, JobStatus, Scheduler, Submission
from ..work_dir import write_private
from . import eventlog, parsing, spool, states, submitfile
from .options import ClusterOptions

logger = logging.getLogger(__name__)

ABSENT_POLLS_BEFORE_GONE = 3
"""Consecutive polls a proc that the log calls idle or running may be missing
from condor_q before we report it gone (the log and the queue are not updated
atomically, so one missing poll proves nothing)."""


@dataclasses.dataclass(frozen=True)
class CommandPaths:
    """Where the HTCondor commands are; tests point these at the dummy queue."""

    condor_submit: str = "condor_submit"
    condor_q: str = "condor_q"
    condor_rm: str = "condor_rm"
    condor_transfer_data: str = "condor_transfer_data"
    """Called only without a shared file system."""

    @property
    def condor_status(self) -> str:
        """``condor_status``, beside ``condor_q``: HTCondor installs them together."""
        return os.path.join(os.path.dirname(self.condor_q), "condor_status")


class HTCondorScheduler(Scheduler):
    """Submit, query and cancel clusters of chunks with HTCondor's CLI."""

    name = "htcondor"

    def __init__(
        self,
        options: ClusterOptions,
        policy: commands.RetryPolicy,
        paths: CommandPaths | None = None,
    ) -> None:
        self.options = options
        self.shares_file_system = options.shared_file_system
        self.policy = policy
        self.paths = paths or CommandPaths()
        # The event log of each submission, and the clusters we follow in it.
        self._event_logs: dict[str, eventlog.EventLogReader] = {}
        self._clusters: set[tuple[str, int]] = set()
        self._from_log: dict[str, JobStatus] = {}
        self._absent_polls: dict[str, int] = defaultdict(int)
        self._removed_by_us: set[str] = set()
        self._cluster_sizes: dict[int, int] = {}
        # Clusters submitted with max_materialize, and the procs seen to
        # exist (in condor_q or in the log): see _remove_whole_cluster.
        self._late_materialized: set[int] = set()
        self._materialized: set[str] = set()
        # Whose condor_hold is the user's own (left alone), not an admin's.
        self._user = _current_user()

    # ------------------------------------------------------------- submit
    def submit(self, submission: Submission) -> list[Job]:
        submit_path = os.path.join(submission.directory, submitfile.SUBMIT_FILE_NAME)
        if not self.shares_file_system:
            staged = {
                ichunk: submitfile.chunk_inputs_dir(submission.directory, ichunk)
                for ichunk in submission.chunks
            }
            job_files.stage_chunks(submission.worker.session_dir, staged)
            job_files.warn_if_large(submission.worker.session_dir, list(staged.values()))
        write_private(submit_path, submitfile.render(submission, self.options).encode())
        # HTCondor appends to an existing user log and keeps its mode; left to
        # create it, the schedd makes it world-readable (0644).
        write_private(submitfile.event_log_path(submission.directory), b"")
        if self.shares_file_system:
            # The same for the procs' output: HTCondor opens an existing file
            # and keeps its mode, where it would make a new one 0644.
            for ichunk in submission.chunks:
                for path in submitfile.job_output_paths(submission.directory, ichunk):
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        cluster, first_proc = commands.call(
            # -file: a bare argument with "=" would be read as a submit
            # command (condor_submit(1): <submit-variable>=<value>).
            [
                self.paths.condor_submit,
                "-terse",
                # Without a shared file system: the inputs go to the schedd now.
                *([] if self.shares_file_system else ["-spool"]),
                "-file",
                submit_path,
            ],
            parse=lambda completed: parsing.submitted_cluster(completed, len(submission.chunks)),
            policy=self.policy,
            before_retry=lambda: self._find_submitted_cluster(submission),
        )
        if not self.shares_file_system:
            # condor_submit -spool has copied them to the schedd: not needed here
            # any more (a map of 100,000 tasks would keep its tasks twice).
            shutil.rmtree(os.path.join(submission.directory, submitfile.INPUTS_DIR_NAME))
        return self._jobs_of(submission, cluster, first_proc)

    def recover(self, submission: Submission) -> list[Job]:
        """The procs of ``submission``'s cluster, if condor_submit created it."""
        found = self._find_submitted_cluster(submission)
        return [] if found is None else self._jobs_of(submission, *found)

    def _jobs_of(self, submission: Submission, cluster: int, first_proc: int) -> list[Job]:
        self._cluster_sizes[cluster] = len(submission.chunks)
        if submission.num_simultaneously_running is not None:
            self._late_materialized.add(cluster)
        jobs = []
        for offset, ichunk in enumerate(submission.chunks):
            stdout_path, stderr_path = submitfile.job_output_paths(submission.directory, ichunk)
            jobid = f"{cluster}.{first_proc + offset}"
            jobs.append(Job(jobid, int(ichunk), stdout_path, stderr_path, submission.job_name))
        return jobs

    def _find_submitted_cluster(self, submission: Submission) -> tuple[int, int] | None:
        """After a failed or timed-out condor_submit: did it create the cluster anyway?

        The cluster's event log (written as soon as the schedd accepts it) or
        our job name in the queue tell, the latter only for jobs whose event
        log is ours. Returns (cluster, first proc) or None.
        """
        log_path = submitfile.event_log_path(submission.directory)
        for event in eventlog.EventLogReader(log_path).read_new_events():
            return event.cluster, 0
        # Only our own jobs, those that log into our (private) submission
        # directory: condor_q lists every user's where the pool sets
        # CONDOR_Q_ONLY_MY_JOBS = False, and for an administrator. Not
        # Owner: a schedd that does not run as root owns every job itself.
        constraint = " && ".join(
            [
                f"{submitfile.JOB_NAME_ATTRIBUTE} == "
                f"{submitfile.classad_string(submission.job_name)}",
                f"UserLog == {submitfile.classad_string(log_path)}",
            ]
        )
        cluster = commands.ask(
            [self.paths.condor_q, "-constraint", constraint, "-af", "ClusterId"],
            parsing.first_cluster_id,
            self.policy.timeout,
        )
        if cluster is None:
            return None
        logger.warning("condor_submit failed but cluster %s exists; using it", cluster)
        return cluster, 0

    # -------------------------------------------------------------- query
    def query(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        if not jobs:
            return {}
        clusters = sorted({_cluster_of(job) for job in jobs})
        # condor_q before the logs: an event is logged before its job leaves
        # the queue, so a job missing from this answer has its last event in
        # the log we read next.
        queued = self._condor_q(clusters)
        self._materialized.update(f"{q.cluster}.{q.proc}" for q in queued)
        if not self.shares_file_system:
            self._fetch_completed(jobs, queued)
        self._read_logs(jobs)
        queued_clusters = {job.cluster for job in queued}
        by_id = {f"{job.cluster}.{job.proc}": job for job in queued}
        answer = {}
        for job in jobs:
            status = self._status_of(job, by_id.get(job.jobid), queued_clusters)
            if status is not None:
                answer[job.jobid] = status
        return answer

    def _condor_q(self, clusters: list[int]) -> list[parsing.QueuedJob]:
        args = [self.paths.condor_q, *map(str, clusters), "-af:t", *parsing.CONDOR_Q_ATTRIBUTES]
        return commands.call(args, parse=parsing.queued_jobs, policy=self.policy)

    def _fetch_completed(self, jobs: Sequence[Job], queued: list[parsing.QueuedJob]) -> None:
        """Bring back the output of spooled procs that completed, then remove them.

        How each ended comes from ``condor_q`` first (their event logs stay
        in the spool); their outcome files are in the session directory once
        ``condor_transfer_data`` returns, before the session looks for them.
        """
        by_id = {job.jobid: job for job in jobs}
        done = [
            f"{q.cluster}.{q.proc}"
            for q in queued
            if q.job_status == spool.COMPLETED and f"{q.cluster}.{q.proc}" in by_id
        ]
        for start in range(0, len(done), 500):
            batch = done[start : start + 500]
            ends = commands.call(
                [self.paths.condor_q, *batch, "-af:t", *spool.EXIT_ATTRIBUTES],
                parse=spool.exits,
                policy=self.policy,
            )
            commands.call(
                [self.paths.condor_transfer_data, *batch],
                parse=spool.transferred,
                policy=self.policy,
            )
            for end in ends:
                self._from_log[end.jobid] = states.status_after_termination(
                    f"{spool.COMPLETED} (Completed)", end.termination
                )
            for jobid in batch:
                _make_private(by_id[jobid].stdout_path, by_id[jobid].stderr_path)
            self._removed_by_us.update(batch)
            commands.call([self.paths.condor_rm, *batch], parse=parsing.removed, policy=self.policy)

    def _read_logs(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            if job.submission not in self._event_logs:
                # The log is in the submission's directory, beside the output.
                directory = os.path.dirname(job.stdout_path)
                log = eventlog.EventLogReader(submitfile.event_log_path(directory))
                self._event_logs[job.submission] = log
            self._clusters.add((job.submission, _cluster_of(job)))
        for submission, log in self._event_logs.items():
            for event in log.read_new_events():
                self._apply(submission, event)

    def _apply(self, submission: str, event: eventlog.Event) -> None:
        if (submission, event.cluster) not in self._clusters:
            return  # another cluster in the same file: not ours
        jobid = f"{event.cluster}.{event.proc}"
        status = states.status_after_event(
            event, removed_by_us=jobid in self._removed_by_us, user=self._user
        )
        if status is not None:
            self._from_log[jobid] = status

    def _status_of(
        self, job: Job, queued: parsing.QueuedJob | None, queued_clusters: set[int]
    ) -> JobStatus | None:
        from_log = self._from_log.get(job.jobid)
        if from_log is not None and from_log.state in (
            JobState.ENDED,
            JobState.ERROR,
            JobState.HELD,
        ):
            return from_log
        if queued is not None:
            self._absent_polls.pop(job.jobid, None)
            if not self.shares_file_system:
                spooling = spool.spooling_status(queued.hold_reason_code, queued.hold_reason)
                if spooling is not None:
                    return spooling
            status = states.status_from_job_status(
                queued.job_status, queued.hold_reason_code, queued.hold_reason, self._user
            )
            if status.state is JobState.ERROR and job.jobid in self._removed_by_us:
                return None
            return status
        # Not in the queue and nothing final in the log.
        self._absent_polls[job.jobid] += 1
        if self._absent_polls[job.jobid] < ABSENT_POLLS_BEFORE_GONE:
            return from_log or JobStatus(JobState.PENDING, "not materialized yet")
        if from_log is None and _cluster_of(job) in queued_clusters:
            # Late materialization: the cluster's factory has not made this
            # proc yet while others of the cluster are queued.
            return JobStatus(JobState.PENDING, "not materialized yet")
        return None  # gone without a word in the log: the session decides

    # ------------------------------------------------------ pending reasons
    def pending_reasons(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """Whether any slot can run ``jobs``: one ``condor_q -better-analyze:summary``.

        The analysis answers per autocluster (jobs with the same
        requirements), naming one job for each. A job of a cluster it names
        gets that answer; the procs of one map all ask for the same, so a job
        of a cluster it does not name gets the answer all rows agree on.
        """
        clusters = sorted({_cluster_of(job) for job in jobs})
        if not clusters:
            return {}
        rows = commands.ask(
            [self.paths.condor_q, *map(str, clusters), "-better-analyze:summary"],
            parsing.match_summary,
            self.policy.timeout,
        )
        by_cluster = {int(row.jobid.split(".")[0]): states.idle_status(row) for row in rows or ()}
        agreed = set(by_cluster.values())
        common = agreed.pop() if len(agreed) == 1 else None
        answer = {}
        for job in jobs:
            status = by_cluster.get(_cluster_of(job), common)
            if status is not None:
                answer[job.jobid] = status
        return answer

    # ------------------------------------------------------------- cancel
    def cancel(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        self._removed_by_us.update(job.jobid for job in jobs)
        procs_by_cluster: dict[int, list[str]] = defaultdict(list)
        for job in jobs:
            procs_by_cluster[_cluster_of(job)].append(job.jobid)
        targets = []
        for cluster, jobids in sorted(procs_by_cluster.items()):
            if self._remove_whole_cluster(cluster, set(jobids)):
                targets.append(str(cluster))
            else:
                targets.extend(sorted(set(jobids)))
        for start in range(0, len(targets), 500):
            commands.call(
                [self.paths.condor_rm, *targets[start : start + 500]],
                parse=parsing.removed,
                policy=self.policy,
            )

    def required_commands(self) -> dict[str, str]:
        commands = {
            "condor_submit_path": self.paths.condor_submit,
            "condor_q_path": self.paths.condor_q,
            "condor_rm_path": self.paths.condor_rm,
        }
        if not self.shares_file_system:
            commands["condor_transfer_data_path"] = self.paths.condor_transfer_data
        return commands

    def _remove_whole_cluster(self, cluster: int, jobids: set[str]) -> bool:
        """Remove by cluster id when all its procs go, or when some of them may
        not be materialized yet: ``condor_rm C.P`` cannot reach those, and the
        factory would materialize them later.

        Only a cluster submitted with ``max_materialize`` has procs that are
        not materialized yet, and a proc seen in ``condor_q`` or in the event
        log is materialized. Without a shared file system there is no
        ``max_materialize`` (the Pool refuses it), and the procs' event logs
        stay in the spool: removing the whole cluster there would end the
        runs of procs that were not cancelled.
        """
        if len(jobids) >= self._cluster_sizes.get(cluster, float("inf")):
            return True
        if not self.shares_file_system:
            return False
        if cluster in self._cluster_sizes and cluster not in self._late_materialized:
            return False
        return any(
            jobid not in self._from_log and jobid not in self._materialized for jobid in jobids
        )

    # ------------------------------------------------------------ capacity
    def capacity(self) -> int | None:
        """Total CPUs of the pool's slots, from ``condor_status``."""
        args = [self.paths.condor_status, "-af", "Cpus"]
        return commands.ask(args, parsing.total_cpus, self.policy.timeout)


def _current_user() -> str | None:
    """The name HTCondor gives this process's user (not $USER, which sudo keeps)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # no name for this uid (a container)
        return None


def _make_private(*paths: str) -> None:
    """0600: HTCondor writes a job's stdout and stderr 0644 (the worker's own files keep 0600)."""
    for path in paths:
        try:
            os.chmod(path, 0o600)
        except FileNotFoundError:
            pass


def _cluster_of(job: Job) -> int:
    return int(job.jobid.split(".", 1)[0])
