"""`emopillars tune` on the tiny corpus: the space file's checks, the sampler's seeding, failed trials, a lagging
trial pruned, a killed study resumed, two processes on one study, and the best options training again with
`train --config`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from sqlalchemy.exc import IntegrityError, OperationalError

from emopillars.distill.config import TrainConfig, TuneConfig
from emopillars.distill.search_space import load_space, parse_space
from emopillars.distill.tune import TrialSeeded, _requeue, open_study, tune
from emopillars.errors import EmopillarsError

# Each trial: two optimizer steps of 4 rows, an evaluation after each (two reports to the pruner).
TRIAL = {"max_steps": 2, "eval_every": 1, "save_every": 100, "batch_size": 4, "eval_batch_size": 32,
         "max_length": 32, "progress": False}  # fmt: skip
SPACE = {"lr": {"low": 5e-5, "high": 5e-4, "log": True}, "warmup_ratio": {"low": 0.0, "high": 0.2},
         "loss": ["bce", "focal"]}  # fmt: skip
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _flags(options: dict) -> list[str]:
    flags = []
    for key, value in options.items():
        name = "--" + key.replace("_", "-")
        flags += [name if value else "--no-" + key.replace("_", "-")] if isinstance(value, bool) else [name, str(value)]
    return flags


def _tune_cmd(out: Path, synth_dir: Path, space: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "emopillars.cli", "tune", "--out", str(out), "--space", str(space), "--data",
            str(synth_dir), *_flags(TRIAL), *extra]  # fmt: skip


def _study(out: Path, name: str = "emopillars-tune") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def _finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=FINISHED)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"lrr": [1e-5]}, "lrr: not an option of train"),
        ({"lr": {"low": -1, "high": 1}}, "lr: Input should be greater than 0 (got -1)"),
        ({"lr": {"low": 1e-3, "high": 1e-4}}, "lr: need low < high"),
        ({"lr": {"low": 1e-5, "hi": 1e-4}}, "lr: unknown key(s) ['hi']"),
        ({"loss": ["bce", "hinge"]}, "loss: Input should be 'bce' or 'focal' (got 'hinge')"),
        ({"loss": {"low": 0, "high": 1}}, "loss: not a numeric option; give a list of choices"),
        ({"batch_size": {"low": 8, "high": 32, "step": 0.5}}, "batch_size: Input should be a valid integer"),
        ({"out": ["a", "b"]}, "out: set by tune for each trial, not searchable"),
        ({"labels": [["joy", "fear"]]}, "labels: choices must be numbers, strings, booleans or null"),
    ],
)
def test_space_errors_name_the_file_and_the_key(tmp_path: Path, space: dict, message: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(space))
    with pytest.raises(EmopillarsError) as err:
        load_space(path, TrainConfig())
    assert str(err.value).startswith(f"search space {path}: ") and message in str(err.value)


def test_space_values_are_the_fields_own_and_the_default_leaves_out_given_options() -> None:
    # PyYAML reads 1e-5 (no dot) as a string: the field's type makes it a number.
    space = parse_space(yaml.safe_load("lr: {low: 1e-5, high: 1e-4, log: true}\ngrad_accum: {low: 1, high: 4}"), "f")
    assert [str(d) for d in space.dims.values()] == ["1e-05..0.0001, log", "1..4"]
    assert space.dims["grad_accum"].integer and not space.dims["lr"].integer
    given = TrainConfig.model_validate({"batch_size": 8, "problem_type": "single_label"})
    assert list(load_space(None, given).dims) == ["lr", "dropout", "warmup_ratio", "weight_decay"]
    assert "loss" in load_space(None, TrainConfig()).dims


def test_sampler_is_reproducible_and_a_resumed_study_draws_new_values() -> None:
    """Seeded per trial number: a rerun replays nothing; one seeded TPE per process would (the reason for it)."""

    def draws(sampler_for_run: type, runs: int) -> list[float]:
        storage = optuna.storages.InMemoryStorage()
        xs: list[float] = []
        for _ in range(runs):  # each run a new process: a new sampler on the same study
            study = optuna.create_study(storage=storage, study_name="s", load_if_exists=True,
                                        sampler=sampler_for_run(seed=0))  # fmt: skip
            study.optimize(lambda t: xs.append(t.suggest_float("x", 0, 1)) or xs[-1], n_trials=3)
        return xs

    resumed = draws(TrialSeeded, 2)
    assert resumed[:3] == draws(TrialSeeded, 1) and len(set(resumed)) == 6
    plain = draws(optuna.samplers.TPESampler, 2)
    assert plain[:3] == plain[3:]  # the replay TrialSeeded avoids


def test_a_storage_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    """A missing folder is named at once (not after the retries that wait out the creation race); SQLAlchemy's
    extra lines stay off the error."""
    missing = tmp_path / "no-such-folder"
    opts = TuneConfig(out=tmp_path / "study", space=tmp_path / "space.yaml", storage=f"sqlite:///{missing / 's.db'}")
    with pytest.raises(EmopillarsError, match=f"folder {missing} does not exist"):
        open_study(opts, 0, parse_space(SPACE, "space"))
    assert not missing.exists()
    opts = TuneConfig(out=tmp_path / "study", space=tmp_path / "space.yaml", storage=f"sqlite:///{tmp_path}")
    with pytest.raises(EmopillarsError, match="unable to open database file") as error:  # a folder, not a file
        open_study(opts, 0, parse_space(SPACE, "space"))
    assert "\n" not in str(error.value)
    opts = TuneConfig(out=tmp_path / "study", space=tmp_path / "space.yaml", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert open_study(opts, 0, parse_space(SPACE, "space")).study_name == "emopillars-tune"


def test_ctrl_c_queues_the_interrupted_trial_again() -> None:
    """Optuna fails a trial Ctrl-C stops; tune queues its options so the next run retries it (as the heartbeat
    does for a killed process). Checked by hand through SIGINT: exit 130, trial 0 FAIL, trial 1 WAITING."""
    study = optuna.create_study()
    trial = study.ask()
    lr = trial.suggest_float("lr", 1e-5, 1e-4)
    study.tell(trial, state=TrialState.FAIL)
    _requeue(study, trial.number)
    retry = study.ask()
    assert retry.suggest_float("lr", 1e-5, 1e-4) == lr and retry.user_attrs == {"retry_of": 0}


def test_a_failing_combination_is_recorded_and_the_study_goes_on(tmp_path: Path, synth_dir: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"rounds": [1, 2], "lr": [1e-4]}))  # rounds 2 without a pool is invalid
    base = TrainConfig.model_validate({"data": str(synth_dir), "seed": 1, **TRIAL})
    result = tune(TuneConfig(out=tmp_path / "study", space=space, n_trials=1, pruner="none"), base)
    trials = _study(tmp_path / "study").trials
    assert [(t.state, t.params["rounds"]) for t in trials] == [(TrialState.FAIL, 2), (TrialState.COMPLETE, 1)]
    assert "needs an unlabeled pool" in trials[0].user_attrs["error"]
    assert result.ran_here == 2 and result.best is not None and result.best.number == 1
    rows = (tmp_path / "study" / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,state,value,duration_s,worker,retry_of,error,lr,rounds")
    assert rows[1].startswith("0,FAIL,,") and rows[2].startswith("1,COMPLETE,0.")
    card = (tmp_path / "study" / "best_model" / "README.md").read_text()
    assert "## Hyper-parameter search" in card and "1 complete, 1 fail" in card and "| rounds | {1, 2} | 1 |" in card


def test_when_every_trial_fails_tune_stops_with_one_line(tmp_path: Path, synth_dir: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"rounds": [2, 3]}))
    base = TrainConfig.model_validate({"data": str(synth_dir), **TRIAL})
    with pytest.raises(EmopillarsError, match=r"no trial of study emopillars-tune finished .* needs an unlabeled"):
        tune(TuneConfig(out=tmp_path / "study", space=space, n_trials=2), base)
    assert [t.state for t in _study(tmp_path / "study").trials] == [TrialState.FAIL] * 5  # max(n_trials, 5)
    assert len((tmp_path / "study" / "trials.csv").read_text().splitlines()) == 6


def test_a_failed_trial_is_one_line_and_its_traceback_only_with_v(tmp_path: Path, synth_dir: Path) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump({"rounds": [2, 3]}))  # every trial fails: no unlabeled pool
    for flags, tracebacks in (((), 0), (("-v",), 5)):
        out = tmp_path / f"study{len(flags)}"
        run = subprocess.run(
            _tune_cmd(out, synth_dir, space, "--n-trials", "1", *flags), capture_output=True, text=True
        )
        assert run.returncode == 1, run.stderr
        failed = [line for line in run.stderr.splitlines() if "emopillars.distill.tune: trial " in line]
        assert len(failed) == 5 and all("needs an unlabeled pool (--unlabeled PATH)" in line for line in failed)
        assert " trial 0 failed (rounds=" in failed[0]
        assert run.stderr.count("Traceback") == tracebacks and "Trial 0 failed with" not in run.stderr
        assert [t.state for t in _study(out).trials] == [TrialState.FAIL] * 5  # still recorded as failed


def test_a_trial_lagging_the_median_is_pruned_at_its_first_evaluation(tmp_path: Path, synth_dir: Path) -> None:
    """The median pruner judges a trial once the study holds 5 complete ones (its n_startup_trials): the study is
    given 4 that scored well (as trials of other machines), trial 4 trains and completes (only 4 complete before
    it), and trial 5, whose first evaluation lags their median, stops there."""
    space, out = tmp_path / "space.yaml", tmp_path / "study"
    space.write_text(yaml.safe_dump({"lr": {"low": 5e-5, "high": 5e-4, "log": True}}))
    out.mkdir()
    lr = optuna.distributions.FloatDistribution(5e-5, 5e-4, log=True)
    study = optuna.create_study(storage=f"sqlite:///{out / 'study.db'}", study_name="emopillars-tune",
                                direction="maximize")  # fmt: skip
    for n in range(4):
        study.add_trial(optuna.trial.create_trial(
            params={"lr": 1e-4 + n * 1e-5}, distributions={"lr": lr}, value=0.9 + n / 100,
            intermediate_values={1: 0.85 + n / 100, 2: 0.9 + n / 100}, user_attrs={"worker": "elsewhere:1"},
        ))  # fmt: skip
    base = TrainConfig.model_validate({"data": str(synth_dir), **TRIAL})
    result = tune(TuneConfig(out=out, space=space, n_trials=6, pruner="median"), base)

    trials = _study(out).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 5 + [TrialState.PRUNED]
    completed, pruned = trials[4], trials[5]
    assert sorted(completed.intermediate_values) == [1, 2]  # trained to its last evaluation
    assert list(pruned.intermediate_values) == [1]  # stopped at its first
    assert pruned.intermediate_values[1] < 0.85 and pruned.value == pruned.intermediate_values[1]
    assert result.ran_here == 2 and result.counts["PRUNED"] == 1
    assert "study emopillars-tune: 5 complete, 1 pruned; ran 2 trials here" in result.summary()
    assert (out / "trials.csv").read_text().splitlines()[6].startswith("5,PRUNED,0.")
    assert not (out / "trials").exists() or not any((out / "trials").iterdir())  # neither is the best: dropped


def _wait_for(condition, what: str, proc: subprocess.Popen, limit: float = 600) -> None:
    started = time.monotonic()
    while not condition():
        assert proc.poll() is None, f"tune exited ({proc.returncode}) before {what}: {proc.stderr.read()}"
        assert time.monotonic() - started < limit, f"no {what} after {limit} s"
        time.sleep(0.5)


def _complete_count(out: Path) -> int:
    if not (out / "study.db").is_file():  # opening it would create it
        return 0
    try:
        return len(_study(out).get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    except (KeyError, IntegrityError, OperationalError):  # no study yet, or its tables are being made (a race)
        return 0


@pytest.mark.slow
def test_killed_study_resumes_to_n_trials_and_best_options_train(tmp_path: Path, synth_dir: Path) -> None:
    space, out = tmp_path / "space.yaml", tmp_path / "study"
    space.write_text(yaml.safe_dump(SPACE))
    cmd = _tune_cmd(out, synth_dir, space, "--n-trials", "4", "--heartbeat", "2")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _complete_count(out) >= 2, "2 complete trials", proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    before = _study(out).trials
    interrupted = [t.number for t in before if t.state == TrialState.RUNNING]

    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    study = _study(out)
    finished = _finished(study)
    assert len(finished) == 4 and not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert len({json.dumps(t.params, sort_keys=True) for t in finished}) == 4  # nothing ran twice
    done_before = {t.number: t.params for t in before if t.state in FINISHED}
    assert all(study.trials[n].params == p and study.trials[n].state in FINISHED for n, p in done_before.items())
    for n in interrupted:  # marked failed, its options retried once
        assert study.trials[n].state == TrialState.FAIL
        assert [t.state for t in study.trials if t.system_attrs.get("failed_trial") == n] == [TrialState.COMPLETE]
    assert all(sorted(t.intermediate_values) == [1, 2] for t in finished)  # one report per evaluation
    best = study.best_trial
    assert f"best: trial {best.number}, validation macro-F1 {best.value:.4f}" in rerun.stdout
    assert sorted(p.name for p in (out / "trials").iterdir()) == []  # the best moved to best_model
    for name in ("trials.csv", "optimization_history.png", "param_importances.png", "best_model/model.safetensors"):
        assert (out / name).is_file(), name
    search = json.loads((out / "best_model" / "metrics.json").read_text())["search"]
    assert search["trial"] == best.number and search["chosen"] == best.params

    options = json.loads((out / "best_config.json").read_text())
    assert options == {**TRIAL, "data": str(synth_dir), **best.params}
    again = subprocess.run([sys.executable, "-m", "emopillars.cli", "train", "--config", str(out / "best_config.json"),
                            "--out", str(tmp_path / "again")], capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0, again.stderr
    saved = json.loads((tmp_path / "again" / "train_config.json").read_text())
    assert {k: saved[k] for k in best.params} == best.params


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path: Path, synth_dir: Path) -> None:
    space, out = tmp_path / "space.yaml", tmp_path / "study"
    space.write_text(yaml.safe_dump(SPACE))
    cmd = _tune_cmd(out, synth_dir, space, "--n-trials", "4", "--storage", f"sqlite:///{tmp_path / 'shared.db'}")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outputs]
    study = optuna.load_study(study_name="emopillars-tune", storage=f"sqlite:///{tmp_path / 'shared.db'}")
    trials = study.trials
    ran = [int(stdout.split("; ran ")[1].split()[0]) for stdout, _ in outputs]
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2 and all(n > 0 for n in ran)  # both worked on it
    assert len({t.number for t in trials}) == len(trials) == sum(ran)  # distinct, none lost
    assert len(_finished(study)) >= 4
    params = [json.dumps(t.params, sort_keys=True) for t in trials]
    assert len(set(params)) == len(params)  # seeded by trial number: the two processes draw apart
