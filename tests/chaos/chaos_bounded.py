"""Bound a call in time, so that a hang fails its test instead of the suite."""

from __future__ import annotations

import threading
from typing import Callable


def call_within(seconds: float, function: Callable, *args, **kwargs):
    """Return ``function(*args, **kwargs)``, or raise what it raised; fail the
    test if it has not ended after ``seconds``."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # handed to the caller
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise AssertionError(f"{getattr(function, '__name__', function)} hung for {seconds} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
