"""The maps a pool runs in background threads (``map_async``, ``imap``, ...).

One :class:`Background` per pool: it starts the threads, waits for them
(``join``), and stops them (``terminate``): setting ``stop`` makes every
running map cancel its jobs, keep its session directory and raise
:class:`pypoolparty.Cancelled`.
"""

from __future__ import annotations

import threading
from typing import Callable


class Background:
    """The threads of one pool and the event that stops their maps."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def start(self, target: Callable[[], None]) -> None:
        """Run ``target`` in a thread of its own; it must not raise."""
        thread = threading.Thread(target=self._run, args=(target,), daemon=True)
        thread.name = f"pypoolparty-{thread.name}"
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run(self, target: Callable[[], None]) -> None:
        try:
            target()
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def join(self) -> None:
        """Wait for every thread, also those started while waiting."""
        while True:
            with self._lock:
                threads = [t for t in self._threads if t is not threading.current_thread()]
            if not threads:
                return
            for thread in threads:
                thread.join()

    def terminate(self) -> None:
        """Stop every map (their jobs are cancelled) and wait until they have."""
        self.stop.set()
        self.join()
