"""Checks of option values, written once for every pool and scheduler package.

Each check returns the value it accepts (converted where that is the whole
point, e.g. a number to ``float``) and raises
:class:`pypoolparty.errors.BadInput` -- a :class:`ValueError` -- naming the
option and the value it got, before anything is prepared or submitted.
"""

from __future__ import annotations

from typing import Any

from .errors import BadInput


def whole_number(name: str, value: Any, minimum: int) -> int:
    """``value`` if it is an ``int`` (not a ``bool``) of at least ``minimum``.

    Raises
    ------
    BadInput
        ``value`` is not a whole number, or is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BadInput(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return value


def optional_whole_number(name: str, value: Any, minimum: int) -> int | None:
    """Like :func:`whole_number`, but ``None`` (meaning "not set") passes."""
    return None if value is None else whole_number(name, value, minimum)


def positive_number(name: str, value: Any) -> float:
    """``value`` as a ``float`` if it is a number (``int`` or ``float``) > 0.

    Raises
    ------
    BadInput
        ``value`` is not a number, or not > 0 (NaN included).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise BadInput(f"{name} must be a number > 0, not {value!r}")
    return float(value)


def non_negative_number(name: str, value: Any) -> float:
    """``value`` as a ``float`` if it is a number (``int`` or ``float``) >= 0.

    Raises
    ------
    BadInput
        ``value`` is not a number, or is negative (NaN included).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise BadInput(f"{name} must be a number >= 0, not {value!r}")
    return float(value)


def command(name: str, value: Any) -> str:
    """``value`` if it is a non-blank string: the name or path of a command.

    Whether the command exists is checked when a map starts (see
    :meth:`pypoolparty.scheduler.Scheduler.required_commands`), not here, so
    that a pool can be built on a host without the scheduler.

    Raises
    ------
    BadInput
        ``value`` is not a string, or is blank.
    """
    if not isinstance(value, str) or not value.strip():
        raise BadInput(f"{name} must be the name or path of a command, not {value!r}")
    return value
