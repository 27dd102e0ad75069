"""`emopillars tune`: an Optuna study over `train`'s own options, maximising validation macro-F1.

Each trial draws the searched options (`search_space`), runs `train` into `--out/trials/N` with the
others as given, and reports the validation macro-F1 of every evaluation to the pruner through
`train`'s `on_evaluate` hook (the step is the evaluation's index, so rounds of pseudo-labelling
keep counting up). A trial that raises a user error, a `ValueError` or an out-of-memory error (a bad
combination, a NaN loss) is recorded as failed, logged in one line (its traceback only with -v; see
`OwnFailureLines`) and the study goes on.

The study lives in an Optuna storage (SQLite in `--out` by default, any RDB URL with `--storage`):
- `--n-trials` is the number of finished or pruned trials the study holds in all, so a rerun after a
  kill completes it, and several processes on one storage (Optuna's way to scale out) stop together.
- Finished trials are never rerun. A killed process leaves its trial RUNNING; its heartbeat stops,
  and the next process to start a trial marks it failed and queues its options again
  (`RetryHeartbeatStaleTrialCallback`). Ctrl-C queues the interrupted trial's options at once.
- The sampler is TPE with its random stream seeded by `--seed` + the trial number (`TrialSeeded`):
  a sequential study is reproducible, and neither a resumed study nor a second process replays the
  draws of the first trials, as one seeded TPE per process would.

The best trial's folder is kept (the others' are deleted as the study goes) and moved to
`--out/best_model` at the end, rather than retrained: it is the model whose score chose the options,
and a retrain would cost one more trial. `tune_outputs` writes the rest.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from filelock import FileLock
from optuna.samplers import BaseSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError

from emopillars.config import describe_validation_error
from emopillars.distill.config import TrainConfig, TuneConfig
from emopillars.distill.search_space import Space, load_space
from emopillars.distill.trainer import train
from emopillars.distill.tune_outputs import write_outputs
from emopillars.errors import EmopillarsError

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# What a bad combination raises inside `train`: recorded as a failed trial, the study goes on.
TRIAL_ERRORS = (EmopillarsError, ValueError, torch.OutOfMemoryError)
OPEN_ATTEMPTS = 3  # tries to open a new storage that other processes are creating too
MAX_RETRY = 2  # a trial whose process dies three times is left failed: its options may be what kills it
PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "median": optuna.pruners.MedianPruner,
    "hyperband": optuna.pruners.HyperbandPruner,
}


class OwnFailureLines(logging.Filter):
    """Drops Optuna's report of a failed trial (its traceback, then its value, None) for the trials `tune`
    logged itself in one line: a bad combination is an expected outcome of a search, not a crash."""

    LOGGER = "optuna.study._optimize"  # where Optuna logs a trial's end
    LINE = re.compile(r"Trial (\d+) failed with ")

    def __init__(self) -> None:
        super().__init__()
        self.trials: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        line = self.LINE.match(record.getMessage())
        return not (line and int(line.group(1)) in self.trials)


@dataclass
class TuneResult:
    """What a `tune` process leaves: the study's state and where its outputs are."""

    out: Path
    study_name: str
    counts: dict[str, int]  # trials per state, the whole study
    ran_here: int  # trials this process ran
    best: FrozenTrial | None
    best_model: Path | None
    best_config: Path | None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        states = ", ".join(f"{n} {s.lower()}" for s, n in self.counts.items() if n)
        lines = [f"study {self.study_name}: {states or 'no trials'}; ran {self.ran_here} trials here"]
        if self.best is not None:
            options = ", ".join(f"{k}={v}" for k, v in self.best.params.items())
            lines.append(f"best: trial {self.best.number}, validation macro-F1 {self.best.value:.4f} ({options})")
            lines.append(f"options: {self.best_config} (emopillars train --config {self.best_config})")
        if self.best_model is not None:
            lines.append(f"model: {self.best_model}")
        lines += self.notes
        lines.append(f"trials table and plots: {self.out}")
        return "\n".join(lines)


class TrialSeeded(BaseSampler):
    """TPE whose random draws for trial N come from a generator seeded with seed + N (module docstring).

    TPE keeps no state between trials but its generator (it reads the history from the study), so a
    fresh `TPESampler` per trial number samples as one long-lived sampler would, without replays.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._tpe: dict[int, TPESampler] = {}

    def _for(self, trial: FrozenTrial) -> TPESampler:
        if trial.number not in self._tpe:
            self._tpe = {trial.number: TPESampler(seed=self.seed + trial.number)}
        return self._tpe[trial.number]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, name: str, distribution: Any) -> Any:
        return self._for(trial).sample_independent(study, trial, name, distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._for(trial).after_trial(study, trial, state, values)


def storage_url(opts: TuneConfig) -> str:
    return opts.storage or f"sqlite:///{(opts.out / 'study.db').resolve()}"


def _is_sqlite(url: str, given: str) -> bool:
    """Whether the storage is SQLite; one whose folder is missing cannot be created: say so now, not after the
    retries that wait out the creation race below (both fail as the same OperationalError)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise EmopillarsError(f"--storage {given}: {exc}") from None
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise EmopillarsError(f"--storage {given}: folder {folder} does not exist")
    return sqlite


def open_study(opts: TuneConfig, seed: int, space: Space) -> optuna.Study:
    """Create or load the study, with heartbeats so a killed process's trial is failed and retried."""
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

    url = storage_url(opts)
    # SQLite locks the whole file per write: wait for another process's write instead of failing at once.
    engine = {"connect_args": {"timeout": 60}} if _is_sqlite(url, opts.storage or url) else None
    for attempt in range(OPEN_ATTEMPTS):
        try:
            storage = RDBStorage(
                url,
                engine_kwargs=engine,
                heartbeat_interval=opts.heartbeat,
                grace_period=2 * opts.heartbeat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(MAX_RETRY),
            )
            study = optuna.create_study(
                storage=storage,
                study_name=opts.study_name,
                direction="maximize",
                sampler=TrialSeeded(seed),
                pruner=PRUNERS[opts.pruner](),
                load_if_exists=True,
            )
            break
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            # Processes started together on a new storage race to create its tables, schema version and study
            # row ("already exists", a unique key taken); the loser finds them made when it opens it again.
            if not isinstance(exc, (IntegrityError, OperationalError)) or attempt == OPEN_ATTEMPTS - 1:
                reason = str(exc).partition("\n")[0]  # SQLAlchemy adds the SQL and a "(Background on ...)" line
                raise EmopillarsError(f"--storage {opts.storage or url}: {reason}") from None
            time.sleep(1.0 + attempt)
    stored, searched = study.user_attrs.get("space"), space.describe()
    if stored is None:
        study.set_user_attr("space", searched)
    elif stored != searched:
        raise EmopillarsError(
            f"study {opts.study_name} searched another space ({stored}); give this one "
            f"({searched}) its own --study-name or --out"
        )
    return study


def trial_config(base: TrainConfig, params: dict[str, Any], out: Path) -> TrainConfig:
    """`train`'s options for one trial: the given ones, the drawn ones, its own folder."""
    try:
        return TrainConfig.model_validate(base.model_dump() | params | {"out": out, "resume": False})
    except ValidationError as exc:
        raise EmopillarsError(describe_validation_error(exc, "this combination")) from None


def _objective(
    base: TrainConfig, space: Space, out: Path, running: dict, failures: OwnFailureLines
) -> Callable[[optuna.Trial], float]:
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: optuna.Trial) -> float:
        running["trial"] = trial.number
        trial.set_user_attr("worker", worker)
        evaluations = itertools.count(1)

        def report(step: int, metrics: dict) -> None:
            trial.report(metrics["macro_f1"], next(evaluations))
            if trial.should_prune():
                raise optuna.TrialPruned(f"validation macro-F1 {metrics['macro_f1']:.4f} at step {step}")

        try:
            cfg = trial_config(base, space.suggest(trial), out / "trials" / str(trial.number))
            return train(cfg, on_evaluate=report).validation["macro_f1"]
        except TRIAL_ERRORS as exc:
            error = " ".join(str(exc).split())
            trial.set_user_attr("error", error)
            failures.trials.add(trial.number)
            options = ", ".join(f"{k}={v}" for k, v in trial.params.items())
            verbose = log.getEffectiveLevel() <= logging.DEBUG  # -v: the traceback too
            log.warning("trial %d failed (%s): %s", trial.number, options, error, exc_info=verbose)
            raise

    return objective


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def _after_trial(opts: TuneConfig, lock: FileLock, ran: list[FrozenTrial]) -> Callable[[optuna.Study, Any], None]:
    """Stop once the study holds --n-trials finished trials (or the last max(--n-trials, 5) trials of this
    process failed: every combination may); drop the folders of finished trials that are not the best."""

    def callback(study: optuna.Study, trial: FrozenTrial) -> None:
        ran.append(trial)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # an out-of-memory trial must not leave its memory to the next
        if _count(study, FINISHED) >= opts.n_trials:
            study.stop()
        elif len(ran) >= (limit := max(opts.n_trials, 5)) and all(t.state == TrialState.FAIL for t in ran[-limit:]):
            log.warning("the last %d trials run here failed; stopping (see trials.csv for why)", limit)
            study.stop()
        with lock:
            drop_losers(study, opts.out / "trials")

    return callback


def drop_losers(study: optuna.Study, trials_dir: Path) -> None:
    """Delete the local folders of finished trials other than the best (running ones are left alone)."""
    import shutil

    done = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.FAIL))
    best = study.best_trial.number if any(t.state == TrialState.COMPLETE for t in done) else None
    for t in done:
        if t.number != best:
            shutil.rmtree(trials_dir / str(t.number), ignore_errors=True)


def _requeue(study: optuna.Study, number: int | None) -> None:
    """After Ctrl-C: queue the interrupted trial's options again (Optuna failed it), as the heartbeat would."""
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == number), None)
    if trial is not None and trial.state == TrialState.FAIL:
        study.enqueue_trial(trial.params, user_attrs={"retry_of": number})


def tune(opts: TuneConfig, base: TrainConfig) -> TuneResult:
    """Run (or continue) the study until it holds `opts.n_trials` finished trials, then write the outputs."""
    space = load_space(opts.space, base)
    opts.out.mkdir(parents=True, exist_ok=True)
    if logging.getLogger("emopillars").getEffectiveLevel() > logging.INFO:
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # -q: no line per trial
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = open_study(opts, base.seed, space)
    lock = FileLock(opts.out / "tune.lock")
    ran: list[FrozenTrial] = []
    running: dict[str, int | None] = {"trial": None}
    failures = OwnFailureLines()
    if (done := _count(study, FINISHED)) >= opts.n_trials:
        log.info("study %s already holds %d finished trials (--n-trials %d)", opts.study_name, done, opts.n_trials)
    else:
        logging.getLogger(OwnFailureLines.LOGGER).addFilter(failures)
        try:
            study.optimize(
                _objective(base, space, opts.out, running, failures),
                timeout=opts.timeout,
                catch=TRIAL_ERRORS,
                callbacks=[_after_trial(opts, lock, ran)],
                gc_after_trial=True,
            )
        except KeyboardInterrupt:
            _requeue(study, running["trial"])
            with lock:
                write_outputs(study, opts, base, space)
            raise
        finally:
            logging.getLogger(OwnFailureLines.LOGGER).removeFilter(failures)
    with lock:
        best_model, best_config = write_outputs(study, opts, base, space)
    counts = {s.name: _count(study, (s,)) for s in TrialState}
    best = study.best_trial if counts["COMPLETE"] else None
    if best is None:
        errors = [t.user_attrs["error"] for t in study.trials if "error" in t.user_attrs]
        first = f"; first error: {errors[0]}" if errors else ""
        raise EmopillarsError(
            f"no trial of study {opts.study_name} finished ({counts['FAIL']} failed, {counts['PRUNED']} pruned)"
            f"{first}; see {opts.out}/trials.csv"
        )
    notes = []
    if best_model is None:
        notes.append(
            f"trial {best.number}'s model is on its worker {best.user_attrs.get('worker')}, under "
            f"its --out/trials/{best.number}"
        )
    return TuneResult(opts.out, opts.study_name, counts, len(ran), best, best_model, best_config, notes)
