"""Waiting for something to happen in a test, without sleeping blindly."""

from __future__ import annotations

import time


def wait_for(condition, timeout: float = 60.0, interval: float = 0.05):
    """Poll ``condition`` until it returns something true and return that;
    fail the test if ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)
