"""Read the part of HTCondor's submit language that pypoolparty writes."""

from __future__ import annotations

import re

MACRO_PATTERN = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.]*)\)")
QUEUE_IN_PATTERN = re.compile(r"^queue\s+(\w+)\s+in\s*\((.*)\)\s*$", re.IGNORECASE)
QUEUE_COUNT_PATTERN = re.compile(r"^queue(\s+(\d+))?\s*$", re.IGNORECASE)
AMOUNT_PATTERN = re.compile(r"^\d+(\.\d+)?\s*([KMGT]B?)?$", re.IGNORECASE)


class SubmitError(Exception):
    """An error condor_submit prints as ``ERROR: ...``."""


def parse(text: str) -> dict:
    """The commands, custom attributes and queue items of a submit file."""
    commands, attributes = {}, {}
    queue_var, items = None, None
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if re.match(r"^queue(\s|$)", line, re.IGNORECASE):
            if items is not None:
                continue  # later queue statements: real 23.x only warns
            queue_var, items = _parse_queue(line, number)
            continue
        if "=" not in line:
            raise SubmitError(
                f"on Line {number} of submit file: \n\nERROR: Failed to parse command file "
                f"(line {number})."
            )
        name, value = (part.strip() for part in line.split("=", 1))
        if name.startswith("+") or name.lower().startswith("my."):
            attributes[name.split(".", 1)[1] if name.lower().startswith("my.") else name[1:]] = (
                value
            )
        else:
            commands[name.lower()] = value
    if items is None:
        raise SubmitError("No queue statement in submit file")
    return {"commands": commands, "attributes": attributes, "queue_var": queue_var, "items": items}


def _parse_queue(line: str, number: int):
    match = QUEUE_IN_PATTERN.match(line)
    if match:
        return match.group(1), match.group(2).split()
    if "(" in line and ")" not in line:
        raise SubmitError(
            f"on Line {number} of submit file: Reached end of file without finding closing "
            f"brace ')' for Queue command on line {number}\n\nERROR: Failed to parse command "
            f"file (line {number})."
        )
    match = QUEUE_COUNT_PATTERN.match(line)
    if match:
        return None, [""] * int(match.group(2) or 1)
    raise SubmitError(f"on Line {number} of submit file: unsupported queue statement: {line}")


def expand(value: str, macros: dict) -> str:
    def replace(match):
        name = match.group(1)
        if name.upper() == "DOLLAR":  # predefined: a literal "$"
            return "$"
        for key, macro in macros.items():
            if key.lower() == name.lower():
                return str(macro)
        return ""

    return MACRO_PATTERN.sub(replace, value)


def split_arguments(value: str) -> list[str]:
    """Split ``arguments`` in the new syntax (double quotes around it all,
    single quotes around arguments with spaces, quotes written twice)."""
    value = value.strip()
    if not (value.startswith('"') and value.endswith('"') and len(value) >= 2):
        return value.split()
    inner = value[1:-1].replace('""', '"')
    arguments, current, quoted, started, i = [], [], False, False, 0
    while i < len(inner):
        char = inner[i]
        if char == "'":
            if quoted and inner[i + 1 : i + 2] == "'":
                current.append("'")
                i += 2
                continue
            quoted, started = not quoted, True
        elif char.isspace() and not quoted:
            if started:
                arguments.append("".join(current))
                current, started = [], False
        else:
            current.append(char)
            started = True
        i += 1
    if quoted:
        raise SubmitError("Found mismatched single quotes in arguments")
    if started:
        arguments.append("".join(current))
    return arguments


def is_amount(value: str | None) -> bool:
    """Whether a request_memory/request_disk value is a plain amount.

    Real condor_submit takes any expression; an expression that is not an
    amount leaves the job idle forever, and so does the dummy.
    """
    return value is None or bool(AMOUNT_PATTERN.match(value.strip()))


def unquote(value: str) -> object:
    """A ClassAd literal as condor_q -af prints it (strings without quotes)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    try:
        return int(value)
    except ValueError:
        return value
