"""The search space of `emopillars tune`: which `train` options a trial draws, and from what.

A space file (YAML or JSON) maps option names to a list of choices or a range:

    lr: {low: 1e-5, high: 1e-4, log: true}   # float options: a range (log and step optional)
    batch_size: [16, 32]                      # any option: a list of choices
    dropout: {low: 0.0, high: 0.3, step: 0.05}
    loss: [bce, focal]

Every name must be a `TrainConfig` field and every value (choices, low, high) valid for that field,
checked here with the field's own type and bounds, so a typo fails before the first trial, in one
line naming the file and the key. Combinations (focal with single_label) are only checked per trial:
such a trial fails and the study goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

from pydantic import TypeAdapter, ValidationError

from emopillars.config import read_config_file
from emopillars.distill.config import TrainConfig
from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    import optuna

# Options tune sets for each trial itself.
RESERVED = ("out", "resume", "progress")
RANGE_KEYS = {"low", "high", "log", "step"}
# A start for encoder fine-tuning (the DistilBERT emotion model searched lr, batch size, dropout and warmup).
DEFAULT_SPACE: dict[str, Any] = {
    "lr": {"low": 1e-5, "high": 1e-4, "log": True},
    "batch_size": [16, 32],
    "dropout": {"low": 0.0, "high": 0.3},
    "warmup_ratio": {"low": 0.0, "high": 0.2},
    "weight_decay": {"low": 0.0, "high": 0.1},
    "loss": ["bce", "focal"],
}


@dataclass(frozen=True)
class Range:
    """Numbers from `low` to `high` (log-uniform with `log`, on a grid with `step`); whole numbers for int options."""

    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        if self.integer:
            return trial.suggest_int(name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(name, self.low, self.high, step=self.step, log=self.log)

    def __str__(self) -> str:
        kind = ", log" if self.log else f", step {self.step}" if self.step else ""
        return f"{self.low}..{self.high}{kind}"


@dataclass(frozen=True)
class Choice:
    """One of the listed values."""

    choices: tuple[Any, ...]

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        return trial.suggest_categorical(name, self.choices)

    def __str__(self) -> str:
        return "{" + ", ".join(map(str, self.choices)) + "}"


@dataclass(frozen=True)
class Space:
    """Option name -> what a trial draws for it."""

    dims: dict[str, Range | Choice]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """This trial's values of the searched options (in the space's order)."""
        return {name: dim.suggest(trial, name) for name, dim in self.dims.items()}

    def describe(self) -> dict[str, str]:
        return {name: str(dim) for name, dim in self.dims.items()}


def _field_value(where: str, name: str, value: Any) -> Any:
    """`value` as the field `name` takes it (PyYAML's '1e-5' string becomes 1e-05), or a one-line error."""
    info = TrainConfig.model_fields[name]
    typ = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation  # bounds included
    try:
        return TypeAdapter(typ).validate_python(value)
    except ValidationError as exc:
        raise EmopillarsError(f"{where}: {name}: {exc.errors()[0]['msg']} (got {value!r})") from None


def _numeric(name: str) -> bool:
    annotation = TrainConfig.model_fields[name].annotation
    return bool({int, float} & {annotation, *get_args(annotation)})


def _range(where: str, name: str, spec: dict[str, Any]) -> Range:
    if unknown := sorted(set(spec) - RANGE_KEYS):
        raise EmopillarsError(f"{where}: {name}: unknown key(s) {unknown}; a range takes low, high, log, step")
    if not _numeric(name):
        raise EmopillarsError(f"{where}: {name}: not a numeric option; give a list of choices")
    if "low" not in spec or "high" not in spec:
        raise EmopillarsError(f"{where}: {name}: a range needs both low and high")
    low, high = _field_value(where, name, spec["low"]), _field_value(where, name, spec["high"])
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise EmopillarsError(f"{where}: {name}: log must be true or false (got {log!r})")
    if step is not None:
        step = _field_value(where, name, step)
        if not step > 0 or (log and step):
            raise EmopillarsError(f"{where}: {name}: step must be positive and cannot go with log (got {step!r})")
    if not low < high or (log and low <= 0):
        raise EmopillarsError(f"{where}: {name}: need low < high (and low > 0 with log), got {low}..{high}")
    return Range(low, high, log, step, integer=isinstance(low, int) and isinstance(high, int))


def _choice(where: str, name: str, values: list[Any]) -> Choice:
    choices = tuple(_field_value(where, name, v) for v in values)
    if not choices:
        raise EmopillarsError(f"{where}: {name}: give at least one choice")
    if not all(c is None or isinstance(c, (bool, int, float, str)) for c in choices):
        raise EmopillarsError(f"{where}: {name}: choices must be numbers, strings, booleans or null")
    return Choice(choices)


def parse_space(data: dict[str, Any], where: str) -> Space:
    """A `Space` from a mapping of option names to choices or ranges; errors name `where` and the key."""
    dims: dict[str, Range | Choice] = {}
    for name, spec in data.items():
        if name not in TrainConfig.model_fields:
            raise EmopillarsError(f"{where}: {name}: not an option of train (see `emopillars train --help`)")
        if name in RESERVED:
            raise EmopillarsError(f"{where}: {name}: set by tune for each trial, not searchable")
        if isinstance(spec, dict):
            dims[name] = _range(where, name, spec)
        elif isinstance(spec, list):
            dims[name] = _choice(where, name, spec)
        else:
            raise EmopillarsError(f"{where}: {name}: give a list of choices or {{low, high}} (got {spec!r})")
    if not dims:
        raise EmopillarsError(f"{where}: the search space is empty")
    return Space(dims)


def load_space(path: Path | None, base: TrainConfig) -> Space:
    """The space in `path`, or the default one less the options the user set as flags (and focal for
    single-label problems, which it does not apply to)."""
    if path is not None:
        return parse_space(read_config_file(path), f"search space {path}")
    skip = set(base.model_fields_set) | ({"loss"} if not base.multi_label else set())
    return parse_space({k: v for k, v in DEFAULT_SPACE.items() if k not in skip}, "the default search space")
