"""What the dummy commands print, in the layout of Son of Grid Engine 8.1.9."""

import socket
from xml.sax.saxutils import escape

import state

RUNNING_STATES = ("r", "t", "dr", "hr", "s", "ds")
XML_HEAD = (
    "<?xml version='1.0'?>\n"
    '<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/'
    'resources/schemas/qstat/qstat.xsd">\n'
)


def qstat_xml(jobs):
    """``qstat -xml``: running tasks one by one under queue_info, waiting ones
    under job_info, grouped by state with compressed task ranges."""
    running, waiting = [], []
    for number in sorted(jobs, key=int):
        job = jobs[number]
        groups = {}
        for task_id in sorted(job["tasks"], key=int):
            task = job["tasks"][task_id]
            if task["state"] in RUNNING_STATES:
                running.append(job_list(number, job, task["state"], [task_id], task))
            elif "E" in task["state"]:
                # tasks that were tried are listed singly, as by the real qstat
                waiting.append(job_list(number, job, task["state"], [task_id], task))
            else:
                groups.setdefault(task["state"], []).append(task_id)
        for state_word, task_ids in groups.items():
            waiting.append(job_list(number, job, state_word, task_ids, None))
    return (
        XML_HEAD
        + "  <queue_info>\n"
        + "".join(running)
        + "  </queue_info>\n  <job_info>\n"
        + "".join(waiting)
        + "  </job_info>\n</job_info>\n"
    )


def job_list(number, job, state_word, task_ids, running_task):
    if running_task is not None and state_word in RUNNING_STATES:
        kind, time_tag = "running", "JAT_start_time"
        when = running_task.get("started") or job["submitted"]
        queue = f"{job['queue']}@{socket.gethostname()}"
    else:
        kind, time_tag, when, queue = "pending", "JB_submission_time", job["submitted"], ""
    lines = [
        f'    <job_list state="{kind}">',
        f"      <JB_job_number>{number}</JB_job_number>",
        f"      <JAT_prio>{'0.00000' if 'h' in state_word else '0.50000'}</JAT_prio>",
        f"      <JB_name>{escape(job['name'])}</JB_name>",
        f"      <JB_owner>{escape(job['owner'])}</JB_owner>",
        f"      <state>{state_word}</state>",
        f"      <{time_tag}>{when}</{time_tag}>",
        f"      <queue_name>{queue}</queue_name>",
        f"      <slots>{job['slots']}</slots>",
    ]
    if job["array"]:
        lines.append(f"      <tasks>{compress(task_ids)}</tasks>")
    lines.append("    </job_list>")
    return "\n".join(lines) + "\n"


def compress(task_ids):
    """``["1", "4", "5", "6"]`` becomes ``1,4-6:1`` (runs of three or more as ranges)."""
    numbers = sorted(int(t) for t in task_ids)
    runs = []
    for number in numbers:
        if runs and runs[-1][1] == number - 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    parts = []
    for first, last in runs:
        if last - first >= 2:
            parts.append(f"{first}-{last}:1")
        else:
            parts.extend(str(n) for n in range(first, last + 1))
    return ",".join(parts)


def qstat_table(jobs):
    """Plain ``qstat``."""
    lines = [
        "job-ID  prior   name       user         state submit/start at     queue"
        "                          slots ja-task-ID ",
        "-" * 113,
    ]
    for number in sorted(jobs, key=int):
        job = jobs[number]
        for task_id in sorted(job["tasks"], key=int):
            task = job["tasks"][task_id]
            lines.append(
                f"{number:>7} 0.50000 {job['name'][:10]:<10} {job['owner'][:12]:<12} "
                f"{task['state']:<5} {job['submitted']:<19} {'':<30} {job['slots']:>5} "
                f"{task_id if job['array'] else ''}"
            )
    return "\n".join(lines) + "\n" if len(lines) > 2 else ""


def qstat_j(number, job):
    """``qstat -j NUMBER``: the fields pypoolparty reads, and a few more."""
    lines = [
        "=" * 62,
        f"job_number:                 {number}",
        f"owner:                      {job['owner']}",
        f"sge_o_workdir:              {job['cwd']}",
        f"job_name:                   {job['name']}",
        f"hard_queue_list:            {job['queue']}",
    ]
    if job["resources"]:
        requests = ",".join(f"{k}={v}" for k, v in job["resources"].items())
        lines.append(f"hard resource_list:         {requests}")
    if job["parallel_environment"]:
        lines.append(f"parallel environment:  {job['parallel_environment']} range: {job['slots']}")
    if job["array"]:
        lines.append(f"job-array tasks:            {job['task_range']}")
    for task_id in sorted(job["tasks"], key=int):
        task = job["tasks"][task_id]
        if task.get("reason"):
            lines.append(f"error reason {task_id:>10}:      {task['reason']}")
    in_error = any("E" in t["state"] for t in job["tasks"].values())
    lines.append(f"scheduling info:            {'Job is in error state' if in_error else ''}")
    return "\n".join(lines) + "\n"


def qstat_g_c(jobs, slots):
    used = sum(
        job["slots"]
        for job in jobs.values()
        for task in job["tasks"].values()
        if task["state"] in RUNNING_STATES
    )
    return (
        "CLUSTER QUEUE                   CQLOAD   USED    RES  AVAIL  TOTAL aoACDS  cdsuE  \n"
        + "-" * 80
        + "\n"
        + f"{state.QUEUE:<30} {0.05:>7.2f} {used:>6} {0:>6} {max(slots - used, 0):>6} "
        + f"{slots:>6} {0:>6} {0:>6} \n"
    )


def unreachable_message(command):
    """What a command that cannot reach the qmaster prints."""
    host = socket.gethostname()
    lines = [
        "error: commlib error: got select error (Connection refused)",
        f'unable to send message to qmaster using port 6444 on host "{host}": got send error',
    ]
    if command == "qsub":
        lines[1] = f"Unable to run job: {lines[1]}"
        lines.append("Exiting.")
    else:
        lines[1] = f"error: {lines[1]}"
    return "\n".join(lines) + "\n"
