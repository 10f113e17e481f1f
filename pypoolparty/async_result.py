"""The result of a map or apply that runs in the background.

Modelled on :class:`multiprocessing.pool.AsyncResult`: ``get`` waits and
returns the value or raises the map's exception, ``get(timeout)`` raises
:class:`multiprocessing.TimeoutError` when the value is not there in time,
and the callbacks run, once, in the thread that ran the map.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from typing import Any, Callable

logger = logging.getLogger("pypoolparty")


class AsyncResult:
    """A value that a background map will deliver.

    Parameters
    ----------
    callback : callable, optional
        Called with the value when the map succeeds.
    error_callback : callable, optional
        Called with the exception when the map fails.
    """

    def __init__(
        self,
        callback: Callable[[Any], object] | None = None,
        error_callback: Callable[[BaseException], object] | None = None,
    ) -> None:
        self._callback = callback
        self._error_callback = error_callback
        self._ready = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def ready(self) -> bool:
        """Whether the map has ended, successfully or not."""
        return self._ready.is_set()

    def successful(self) -> bool:
        """Whether the map ended without an exception.

        Raises
        ------
        ValueError
            If the map has not ended yet.
        """
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._error is None

    def wait(self, timeout: float | None = None) -> None:
        """Wait until the map has ended, or ``timeout`` seconds have passed."""
        self._ready.wait(timeout)

    def get(self, timeout: float | None = None) -> Any:
        """Return the map's value once it is there, or raise its exception.

        Raises
        ------
        multiprocessing.TimeoutError
            If the map has not ended within ``timeout`` seconds; it goes on.
        """
        if not self._ready.wait(timeout):
            raise multiprocessing.TimeoutError(f"no result within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value

    def _set(self, value: Any = None, error: BaseException | None = None) -> None:
        """Deliver the map's value or exception.

        The matching callback runs first, as in multiprocessing: once ``get``
        returns, the callback has run.
        """
        self._value, self._error = value, error
        callback, argument = (
            (self._callback, value) if error is None else (self._error_callback, error)
        )
        try:
            if callback is not None:
                callback(argument)
        except Exception:  # a failing callback must not break the pool
            logger.exception("a callback of %r raised", self)
        finally:
            self._ready.set()

    def __repr__(self) -> str:
        state = "pending" if not self.ready() else "ok" if self._error is None else "failed"
        return f"<pypoolparty AsyncResult {state}>"
