"""The base of every command's pydantic config, the checks configs share, and config files in and out.

`options.py` builds each command's config from a file plus CLI flags (flags win).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from emopillars.errors import EmopillarsError


def _check_split_fractions(fractions: tuple[float, float, float]) -> tuple[float, float, float]:
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split_fractions must be non-negative and sum to 1, got {fractions}")
    return fractions


# train/validation/test shares, checked once for every config that splits data.
SplitFractions = Annotated[tuple[float, float, float], AfterValidator(_check_split_fractions)]


class StrictModel(BaseModel):
    """Base of every config: unknown keys are errors, values are re-checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a JSON or YAML config file into a dict, naming the file on any failure."""
    if not path.is_file():
        raise EmopillarsError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else json.loads(text)
    except (ValueError, RecursionError, yaml.YAMLError) as exc:  # UnicodeDecodeError, JSONDecodeError: ValueErrors
        reason = " ".join(str(exc).split())[:200]  # YAML's messages span lines
        raise EmopillarsError(f"config file {path} is not valid JSON/YAML: {reason}") from None
    if not isinstance(data, dict):
        raise EmopillarsError(f"config file {path} must hold a mapping of option names to values")
    return data


def describe_validation_error(exc: ValidationError, where: str) -> str:
    """One line per pydantic error folded into one sentence: `where: field: message (got value)`."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "config"
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {repr(got)[:80]})"
        parts.append(f"{field}: {err['msg']}{shown}")
    return " ".join(f"{where}: {'; '.join(parts)}".split())  # one line, whatever the messages hold


def save_config(config: BaseModel, path: Path) -> None:
    """Write a config beside an output so the run can be reproduced."""
    path.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
