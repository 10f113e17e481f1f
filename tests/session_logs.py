"""Reading the session logs (``log.jsonl``) a test's maps left behind."""

from __future__ import annotations

import json
import os


def session_events(work_dir) -> list[dict]:
    """The events of every session log (``log.jsonl``) below ``work_dir``."""
    found = []
    for root, _, files in os.walk(work_dir):
        if "log.jsonl" in files:
            with open(os.path.join(root, "log.jsonl")) as file:
                found += [json.loads(line) for line in file if line.strip()]
    return found
