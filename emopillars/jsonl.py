"""Reading JSON Lines input with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from emopillars.errors import EmopillarsError


class _NotJSON(ValueError):
    """NaN, Infinity or -Infinity: Python's json reads them, JSON has no such numbers."""


def _refuse(token: str) -> float:
    raise _NotJSON(token)


def loads(text: str, where: str) -> object:
    """Strict JSON: a syntax error or a NaN/Infinity (which `datasets` would turn into a silent null) is a one-line
    error naming `where`."""
    try:
        return json.loads(text, parse_constant=_refuse)
    except json.JSONDecodeError as exc:
        raise EmopillarsError(f"{where}: not valid JSON ({exc.msg})") from None
    except _NotJSON as exc:
        raise EmopillarsError(f"{where}: {exc} is not a JSON number (write null for a missing value)") from None
    except RecursionError:
        raise EmopillarsError(f"{where}: JSON nested too deeply") from None


def json_objects(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; anything but a JSON object is a one-line error."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row = loads(line, f"{path}:{number}")
        if not isinstance(row, dict):
            raise EmopillarsError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        yield number, row
