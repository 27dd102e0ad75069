"""What `emopillars tune` leaves in `--out` besides the study: the trials table, the plots, the best
trial's options as a `train --config` file, and the best model, whose card records the search.

Written at the end of every process (under the study folder's lock), from the storage alone, so a
rerun or a second process rewrites them from the whole study (and makes whole a file a kill tore).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from emopillars.distill.config import TrainConfig, TuneConfig
    from emopillars.distill.search_space import Space

log = logging.getLogger(__name__)

COLUMNS = ["number", "state", "value", "duration_s", "worker", "retry_of", "error"]


def write_outputs(
    study: optuna.Study, opts: TuneConfig, base: TrainConfig, space: Space
) -> tuple[Path | None, Path | None]:
    """All the files; returns the best model folder (None when it is on another machine) and options file."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    write_trials_table(trials, opts.out / "trials.csv")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return None, None
    write_plots(study, opts.out, importances=len(complete) >= 2)
    best = study.best_trial
    config = opts.out / "best_config.json"
    config.write_text(json.dumps(best_options(base, best.params), indent=2) + "\n", encoding="utf-8")
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState if s.is_finished()}
    search = {
        "tool": "emopillars tune (Optuna)",
        "study": opts.study_name,
        "objective": "validation macro_f1 (maximised)",
        "sampler": f"TPE, seed {base.seed} + trial number",
        "pruner": opts.pruner,
        "trials": counts,
        "space": space.describe(),
        "trial": best.number,
        "value": best.value,
        "chosen": best.params,
    }
    return publish_best_model(opts.out, best.number, search), config


def best_options(base: TrainConfig, params: dict[str, Any]) -> dict[str, Any]:
    """The options the user gave `tune` for `train` and the best trial's drawn ones: `train --config` takes them
    as they are (`out` is left to the trainer's own flag)."""
    return base.model_dump(mode="json", exclude_unset=True, exclude={"out", "resume"}) | params


def write_trials_table(trials: list[FrozenTrial], path: Path) -> None:
    """One row per trial: number, state, value, duration, who ran it, what it retried, why it failed, options."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    params = sorted({name for t in trials for name in t.params})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS + params)
    for t in trials:
        retry = t.user_attrs.get("retry_of", RetryHeartbeatStaleTrialCallback.retried_trial_number(t))
        duration = round(t.duration.total_seconds(), 2) if t.duration else None
        row = [t.number, t.state.name, t.value, duration, t.user_attrs.get("worker"), retry, t.user_attrs.get("error")]
        writer.writerow(row + [t.params.get(name) for name in params])
    path.write_text(buf.getvalue(), encoding="utf-8")


def write_plots(study: optuna.Study, out: Path, importances: bool) -> None:
    """optimization_history.png and param_importances.png (with `importances`: from two complete trials, one
    says nothing about importance)."""
    import matplotlib.pyplot as plt
    from optuna.visualization.matplotlib import plot_optimization_history, plot_param_importances

    import emopillars.distill.plots  # noqa: F401  (selects the file-only Agg backend)

    plots = {"optimization_history": plot_optimization_history}
    if importances:
        plots["param_importances"] = plot_param_importances
    for name, plot in plots.items():
        try:
            ax = plot(study)
        except (ValueError, RuntimeError) as exc:  # e.g. importances of a single trial
            log.info("no %s plot yet: %s", name, exc)
            continue
        ax.figure.set_size_inches(8, 4.5)
        ax.figure.tight_layout()
        ax.figure.savefig(out / f"{name}.png", dpi=100)
        plt.close(ax.figure)


def publish_best_model(out: Path, number: int, search: dict[str, Any]) -> Path | None:
    """`out/best_model`: trial `number`'s folder moved there (the record of the search in its card), or the
    record refreshed when it is there already; None when the folder is elsewhere (another machine's trial)."""
    source, target = out / "trials" / str(number), out / "best_model"
    if (source / "metrics.json").is_file():
        record_search(source, search, out)
        old = out / f"best_model.old-{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    elif _search_of(target).get("trial") == number:
        record_search(target, search, out)
    else:
        return None
    return target


def _search_of(folder: Path) -> dict[str, Any]:
    metrics = folder / "metrics.json"
    return json.loads(metrics.read_text(encoding="utf-8")).get("search", {}) if metrics.is_file() else {}


def record_search(folder: Path, search: dict[str, Any], out: Path) -> None:
    """Add the search to the model's metrics.json and rewrite its card (named after the study folder)."""
    from emopillars.distill.card import write_card
    from emopillars.distill.config import TrainConfig
    from emopillars.distill.outputs import write_report

    report = json.loads((folder / "metrics.json").read_text(encoding="utf-8")) | {"search": search}
    cfg = TrainConfig.model_validate_json((folder / "train_config.json").read_text(encoding="utf-8"))
    write_report(report, folder)
    write_card(cfg.model_copy(update={"out": out}), report, folder / "README.md")
