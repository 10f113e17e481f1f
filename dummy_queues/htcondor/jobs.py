"""Clusters, procs and their transitions in the dummy HTCondor's state."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import common
import events
import submit_file
from state import chance, faults, job_id, owner

IDLE, RUNNING, REMOVED, COMPLETED, HELD = 1, 2, 3, 4, 5
UNKNOWN_JOB_STATUS = 8
"""What condor_q shows for a proc the faults put into a state no HTCondor has."""

DEFAULT_ERROR_STATE = {
    "HoldReason": "Error from slot1_1@dummy: Job has gone over cgroup memory limit of "
    "128 megabytes. Peak usage: 140 megabytes.",
    "HoldReasonCode": 34,
    "HoldReasonSubCode": 0,
}


def add_cluster(state: dict, description: dict, batch_name: str | None) -> int:
    """Queue a new cluster from a parsed submit description; returns its id."""
    cluster = state["next_cluster"]
    state["next_cluster"] += 1
    commands = description["commands"]
    limit = commands.get("max_materialize")
    max_idle = commands.get("max_idle")
    state["clusters"][str(cluster)] = {
        "description": description,
        "batch_name": batch_name,
        "next_item": 0,
        "materialize_limit": int(limit) if limit else None,
        "max_idle": int(max_idle) if max_idle else None,
        "log": commands.get("log"),
    }
    if limit or max_idle:
        events.cluster_submitted(commands.get("log"), cluster)
    materialize(state, cluster)
    return cluster


def cluster_jobs(state: dict, cluster: int) -> list[dict]:
    return [job for job in state["jobs"].values() if job["cluster"] == cluster]


def materialize(state: dict, cluster: int) -> None:
    """Turn queued items into procs, as far as max_materialize/max_idle allow."""
    record = state["clusters"][str(cluster)]
    items = record["description"]["items"]
    while record["next_item"] < len(items):
        present = cluster_jobs(state, cluster)
        if record["materialize_limit"] and len(present) >= record["materialize_limit"]:
            return
        idle = [job for job in present if job["status"] in (IDLE, HELD)]
        if record["max_idle"] and len(idle) >= record["max_idle"]:
            return
        proc = record["next_item"]
        record["next_item"] += 1
        state["jobs"][job_id(cluster, proc)] = new_job(record, cluster, proc, items[proc])
        events.submitted(record["log"], cluster, proc)


def new_job(record: dict, cluster: int, proc: int, item: str) -> dict:
    description = record["description"]
    macros = {"Process": proc, "ProcId": proc, "Cluster": cluster, "ClusterId": cluster}
    if description["queue_var"]:
        macros[description["queue_var"]] = item
    commands = {
        name: submit_file.expand(value, macros) for name, value in description["commands"].items()
    }
    attributes = {
        name: submit_file.unquote(submit_file.expand(value, macros))
        for name, value in description["attributes"].items()
    }
    ad = {
        "ClusterId": cluster,
        "ProcId": proc,
        "Owner": owner(),
        "Cmd": commands.get("executable"),
        "Iwd": commands.get("initialdir", os.getcwd()),
        "Out": commands.get("output"),
        "Err": commands.get("error"),
        "UserLog": commands.get("log"),
        "RequestCpus": int(commands.get("request_cpus", 1)),
        "RequestMemory": commands.get("request_memory", 128),
        "RequestDisk": commands.get("request_disk", "DiskUsage"),
        "JobUniverse": 5,
    }
    if "request_gpus" in commands:
        ad["RequestGPUs"] = commands["request_gpus"]
    ad.update(attributes)
    if record["batch_name"]:
        ad["JobBatchName"] = record["batch_name"]
    return {
        "cluster": cluster,
        "proc": proc,
        "status": IDLE,
        "ad": ad,
        "argv": [commands.get("executable")]
        + submit_file.split_arguments(commands.get("arguments", "")),
        "getenv": commands.get("getenv", "false").lower() == "true",
        "startable": submit_file.is_amount(commands.get("request_memory"))
        and submit_file.is_amount(commands.get("request_disk")),
        "pid": None,
        "unknown": False,
    }


def hold(job: dict, reason: str, code: int, subcode: int) -> None:
    job["status"] = HELD
    job["pid"] = None
    job["ad"].update(HoldReason=reason, HoldReasonCode=code, HoldReasonSubCode=subcode)
    events.held(job["ad"]["UserLog"], job["cluster"], job["proc"], reason, code, subcode)


def fault_at_start(job: dict) -> str | None:
    """``error``, ``vanish`` or None, drawn reproducibly from the faults' seed."""
    settings = faults()
    key = job_id(job["cluster"], job["proc"])
    if chance("error", key) < settings.get("error_probability", 0.0):
        return "error"
    if chance("vanish", key) < settings.get("vanish_probability", 0.0):
        return "vanish"
    return None


def error_state_for(job: dict) -> dict:
    choices = faults().get("error_states") or [DEFAULT_ERROR_STATE]
    pick = int(chance("error_state", job_id(job["cluster"], job["proc"])) * len(choices))
    return {**DEFAULT_ERROR_STATE, **choices[pick]}


def looks_unknown(job: dict) -> bool:
    key = job_id(job["cluster"], job["proc"])
    return chance("unknown", key) < faults().get("unknown_state_probability", 0.0)


def remove_job(state: dict, job: dict) -> None:
    """condor_rm: kill the proc's processes, log 009, drop it from the queue."""
    common.kill_process_group(job["pid"])
    events.aborted(job["ad"]["UserLog"], job["cluster"], job["proc"], owner())
    del state["jobs"][job_id(job["cluster"], job["proc"])]


def retire_finished_clusters(state: dict) -> None:
    """A cluster with no procs left and nothing to materialize is removed (036)."""
    for key, record in list(state["clusters"].items()):
        cluster = int(key)
        items = record["description"]["items"]
        if record["next_item"] >= len(items) and not cluster_jobs(state, cluster):
            events.cluster_removed(record["log"], cluster, record["next_item"])
            del state["clusters"][key]


def vacate(job: dict, fast: bool = False) -> None:
    """condor_vacate_job: SIGTERM (``-fast``: SIGKILL) to the proc, log 004, idle again.

    The runner starts it anew once its processes have ended, and SIGKILLs
    them if they outlive ``vacate_kill_seconds`` (faults.json, default 5).
    """
    with contextlib.suppress(ProcessLookupError, PermissionError, TypeError):
        os.killpg(job["pid"], signal.SIGKILL if fast else signal.SIGTERM)
    job.update(status=IDLE, pid=None, vacated_at=time.time(), vacate_at=None)
    job["vacations"] = job.get("vacations", 0) + 1
    events.evicted(job["ad"]["UserLog"], job["cluster"], job["proc"])


def vacate_at_start(job: dict) -> float | None:
    """When faults.json's ``vacate_probability`` evicts this run of the proc, if it does."""
    key = f"{job_id(job['cluster'], job['proc'])}.{job.get('vacations', 0)}"
    if chance("vacate", key) >= faults().get("vacate_probability", 0.0):
        return None
    return time.time() + 0.05 + 0.5 * chance("vacate_delay", key)
