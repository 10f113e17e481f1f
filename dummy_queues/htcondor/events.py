"""Write job events in HTCondor's classic event log format."""

from __future__ import annotations

import time

from state import HOST


def append_event(
    log_path: str | None, code: int, cluster: int, proc: int, text: str, body=()
) -> None:
    """Append one event: header, tab-indented body lines, closing ``...``."""
    if not log_path:
        return
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"{code:03d} ({cluster:03d}.{proc:03d}.000) {stamp} {text}"]
    lines += ["\t" + line for line in body]
    lines.append("...")
    try:
        with open(log_path, "a") as file:
            file.write("\n".join(lines) + "\n")
    except OSError:
        # As HTCondor: a user log that cannot be written (its directory was
        # removed) is not written; the job goes on and leaves the queue.
        pass


def submitted(log_path, cluster, proc):
    append_event(log_path, 0, cluster, proc, f"Job submitted from host: {HOST}")


def cluster_submitted(log_path, cluster):
    append_event(log_path, 35, cluster, -1, f"Cluster submitted from host: {HOST}")


def cluster_removed(log_path, cluster, num_procs):
    body = [f"Materialized {num_procs} jobs from {num_procs} items.\tComplete"]
    append_event(log_path, 36, cluster, -1, "Cluster removed", body)


def executing(log_path, cluster, proc, slot):
    body = [f"SlotName: slot1_{slot}@dummy", "Cpus = 1"]
    append_event(log_path, 1, cluster, proc, f"Job executing on host: {HOST}", body)


def terminated(log_path, cluster, proc, returncode):
    if returncode >= 0:
        how = f"(1) Normal termination (return value {returncode})"
    else:
        how = f"(0) Abnormal termination (signal {-returncode})"
    body = [how, "", "Job terminated of its own accord."]
    append_event(log_path, 5, cluster, proc, "Job terminated.", body)


def held(log_path, cluster, proc, reason, code, subcode):
    body = [reason, f"Code {code} Subcode {subcode}"]
    append_event(log_path, 12, cluster, proc, "Job was held.", body)


def aborted(log_path, cluster, proc, by_user):
    body = [f"via condor_rm (by user {by_user})"]
    append_event(log_path, 9, cluster, proc, "Job was aborted.", body)


def evicted(log_path, cluster, proc):
    # As condor_vacate_job's eviction (sample: tests/htcondor/samples/eventlog_vacated.log).
    body = ["(0) CPU times", "\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage"]
    append_event(log_path, 4, cluster, proc, "Job was evicted.", body)
