"""Run one chaos map in a process of its own and print its outcome as JSON.

Usage: ``python chaos_driver.py SPEC.json``. The spec names the pool's module,
its options (the dummy's command paths among them), the tasks, the chunk size
and the directory where each task notes its runs
(:func:`chaos_tasks.compute_noting_runs`). Prints one line, ``{"results":
[...]}`` or ``{"error": "<type>", "clear": bool, "message": "..."}``, where
the message holds the exception's text, its notes and its cause.
"""

from __future__ import annotations

import importlib
import json
import sys

import chaos_tasks

import pypoolparty

CLEAR_ERRORS = (
    pypoolparty.ResubmissionsExhausted,
    pypoolparty.SchedulerUnavailable,
    pypoolparty.WorkDirError,
    chaos_tasks.Refused,
)


def main(spec_path: str) -> int:
    with open(spec_path) as file:
        spec = json.load(file)
    pool = importlib.import_module(spec["pool_module"]).Pool(**spec["pool_options"])
    tasks = [(*task, spec["side_effects"]) for task in spec["tasks"]]
    try:
        results = pool.map(chaos_tasks.compute_noting_runs, tasks, chunksize=spec["chunksize"])
    except Exception as error:
        print(json.dumps(describe(error)), flush=True)
        return 1
    print(json.dumps({"results": [list(result) for result in results]}), flush=True)
    return 0


def describe(error: BaseException) -> dict:
    parts = [str(error), *getattr(error, "__notes__", [])]
    if error.__cause__ is not None:
        parts.append(str(error.__cause__))
    return {
        "error": type(error).__name__,
        "clear": isinstance(error, CLEAR_ERRORS),
        "message": "\n".join(parts),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
