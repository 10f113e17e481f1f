"""The ClassAd constraints the dummy understands: ``Attr == value`` (also
``=?=``), joined by ``&&``. Anything else is an error, as a typo would be."""

from __future__ import annotations

import re

import submit_file

COMPARISON_PATTERN = re.compile(
    r'^\s*\(?\s*([A-Za-z_]\w*)\s*(==|=\?=)\s*("(?:[^"\\]|\\.)*"|-?\d+)\s*\)?\s*$'
)


class ConstraintError(Exception):
    pass


def matches(constraint: str, ad: dict) -> bool:
    for part in constraint.split("&&"):
        match = COMPARISON_PATTERN.match(part)
        if match is None:
            raise ConstraintError(f"Parse error of constraint expression: {constraint}")
        name, _operator, literal = match.groups()
        value = next((v for k, v in ad.items() if k.lower() == name.lower()), None)
        if value != submit_file.unquote(literal):
            return False
    return True
