"""Training on the real MiniLM with tiny data: the loss falls, outputs load, resume is exact, modes work."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from emopillars.distill.config import TrainConfig
from emopillars.distill.data import load_splits
from emopillars.distill.model import head_linear
from emopillars.distill.trainer import fit, train
from emopillars.errors import EmopillarsError
from emopillars.inference.classifier import EmotionClassifier
from emopillars.taxonomy import LABEL2ID, LABELS


def test_loss_falls_and_model_folder_is_complete(trained: tuple[Path, dict]) -> None:
    out, report = trained
    losses = [h["loss"] for h in report["history"]]
    assert len(losses) == 10 and np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.01
    for name in ("model.safetensors", "config.json", "tokenizer.json", "thresholds.json", "README.md",
                 "metrics.json", "train_config.json", "training_curves.png", "per_label_f1.png"):  # fmt: skip
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("validation", "test"):
        assert {"macro_f1", "micro_f1", "roc_auc_macro", "hamming_loss", "subset_accuracy", "per_label"} <= set(
            metrics[split]
        )
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"]["0"] == LABELS[0] and len(config["id2label"]) == 28
    assert config["emopillars"]["mode"] == "contextless"
    assert set(config["emopillars"]["thresholds"]) == set(LABELS)
    assert "| test |" in (out / "README.md").read_text()
    assert TrainConfig.model_validate_json((out / "train_config.json").read_text()).max_steps == 10


def test_pipeline_round_trip_and_test_metrics_equal_predict(trained: tuple[Path, dict], synth_dir: Path) -> None:
    from transformers import pipeline

    out, report = trained
    clf = EmotionClassifier.from_pretrained(out)
    texts = ["I am so happy today", "how dare they do this"]
    probs = clf.predict_proba(texts)
    outputs = pipeline("text-classification", model=str(out), top_k=None)(texts)
    for row, scores in zip(probs, outputs, strict=True):
        by_name = {s["label"]: s["score"] for s in scores}
        assert set(by_name) == set(LABELS)
        assert np.allclose([by_name[name] for name in LABELS], row, atol=1e-5)
    # test metrics of metrics.json == metrics of what predict outputs on the test texts
    from emopillars.distill.metrics import compute_metrics

    test = load_splits(TrainConfig(data=str(synth_dir))).test
    predicted = clf.predict(test.texts)
    chosen = np.array([[int(name in p["labels"]) for name in LABELS] for p in predicted])
    scores = np.array([[p["scores"][name] for name in LABELS] for p in predicted])
    assert (chosen == (scores >= clf.thresholds - 1e-6)).all()
    again = compute_metrics(test.gold, clf.predict_proba(test.texts), clf.thresholds, LABELS)
    assert again["macro_f1"] == pytest.approx(report["test"]["macro_f1"])
    assert again["per_label"] == report["test"]["per_label"]


def _resume_cfg(tmp_path: Path, synth_dir: Path, fast: dict, steps: int, resume: bool = False) -> TrainConfig:
    return TrainConfig(data=str(synth_dir), out=tmp_path, max_steps=steps, schedule="constant", warmup_ratio=0.0,
                       eval_every=2, resume=resume, **fast)  # fmt: skip


def test_resume_from_checkpoint_continues_exactly(minilm: tuple, tmp_path: Path, synth_dir: Path, fast: dict) -> None:
    model, tok = minilm
    data = load_splits(_resume_cfg(tmp_path, synth_dir, fast, 4))
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    straight = fit(_resume_cfg(tmp_path, synth_dir, fast, 4), model, tok, data, run_dir=None)

    model.load_state_dict(initial)
    first = fit(_resume_cfg(tmp_path, synth_dir, fast, 2), model, tok, data, run_dir=tmp_path / "ck")
    assert first.steps == 2 and (tmp_path / "ck" / "state.json").is_file()
    model.load_state_dict(initial)  # resume must not depend on the in-memory weights
    resumed = fit(_resume_cfg(tmp_path, synth_dir, fast, 4, resume=True), model, tok, data, run_dir=tmp_path / "ck")
    assert [h["step"] for h in resumed.history] == [1, 2, 3, 4]
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in straight.history], rel=1e-5)
    assert resumed.best_score == pytest.approx(straight.best_score)


def test_validation_loss_is_the_training_loss_without_kd(
    trained: tuple[Path, dict], minilm: tuple, synth_dir: Path, fast: dict
) -> None:
    """Validation on the training rows, one step that moves no weight: its loss is the step's loss less KD.

    Label smoothing, focal, pos_weight and orthogonality count in both; the KD term in neither.
    """
    model, tok = minilm
    for module in model.modules():  # a train-mode forward then equals the eval-mode one
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    cfg = TrainConfig(data=str(synth_dir), max_steps=1, loss="focal", pos_weight=True, label_smoothing=0.1,
                      ortho_weight=0.01, kd_weight=0.25, **fast | {"lr": 1e-12, "batch_size": 512})  # fmt: skip
    data = load_splits(cfg)
    teacher = EmotionClassifier.from_pretrained(trained[0])
    result = fit(cfg, model, tok, replace(data, validation=data.train), teacher)
    step, val_loss = result.history[0], result.evals[0]["val_loss"]
    assert step["kd"] > 0 and step["ortho"] > 0
    assert val_loss == pytest.approx(step["task"] / (1 - cfg.kd_weight) + step["ortho"], rel=1e-4)


def test_nan_loss_stops_with_a_clear_message(tmp_path: Path, synth_dir: Path, fast: dict) -> None:
    nan_head = (torch.full((28, 384), float("nan")), torch.zeros(28))
    cfg = TrainConfig(data=str(synth_dir), out=tmp_path, max_steps=2, **fast)
    with pytest.raises(EmopillarsError, match="training loss became nan at step 1"):
        train(cfg, head_init=nan_head)


def test_all_loss_options_and_kd_from_teacher(
    trained: tuple[Path, dict], tmp_path: Path, synth_dir: Path, fast: dict
) -> None:
    cfg = TrainConfig(data=str(synth_dir), out=tmp_path, max_steps=2, loss="focal", pos_weight=True,
                      label_smoothing=0.05, ortho_weight=0.01, teacher=str(trained[0]), kd_weight=0.5,
                      temperature=2.0, grad_accum=2, schedule="cosine", weighted_sampling=True, **fast)  # fmt: skip
    report = train(cfg).report
    first = report["history"][0]
    assert {"task", "kd", "ortho"} <= set(first) and all(np.isfinite(first[k]) for k in ("task", "kd", "ortho"))
    assert first["loss"] == pytest.approx(first["task"] + first["kd"] + first["ortho"], rel=1e-5)


def test_pseudo_label_rounds(tmp_path: Path, synth_dir: Path, fast: dict) -> None:
    pool = tmp_path / "pool.txt"
    pool.write_text("\n".join(["I am overjoyed", "I am so mad", "thank you kindly", "I am frightened"] * 3))
    cfg = TrainConfig(data=str(synth_dir), out=tmp_path / "out", max_steps=3, rounds=2, unlabeled=str(pool),
                      pseudo_threshold=0.05, **fast)  # fmt: skip
    report = train(cfg).report
    rounds = report["rounds"]
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[0]["pseudo_labelled_added"] == 0 and rounds[1]["pseudo_labelled_added"] == 12
    assert rounds[1]["teacher"] and rounds[1]["train_rows"] == rounds[0]["train_rows"] + 12
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["rounds"] == rounds


def test_single_label_with_head_init_from_rows(
    trained: tuple[Path, dict], tmp_path: Path, synth_dir: Path, fast: dict
) -> None:
    """The downstream path: another label set, head rows supplied by the caller, softmax + argmax."""
    labels = ("joy", "anger", "fear", "gratitude")
    source = EmotionClassifier.from_pretrained(trained[0])
    head = head_linear(source.model)
    rows = [LABEL2ID[name] for name in labels]
    init = (head.weight.detach()[rows].clone(), head.bias.detach()[rows].clone())
    cfg = TrainConfig(data=str(synth_dir), out=tmp_path, labels=labels, problem_type="single_label",
                      model=str(trained[0]), max_steps=3, **fast)  # fmt: skip
    data = load_splits(cfg)
    report = train(cfg, data=data, head_init=init).report
    assert "accuracy" in report["validation"] and set(report["validation"]["per_label"]) == set(labels)
    clf = EmotionClassifier.from_pretrained(tmp_path)
    assert clf.labels == labels and clf.problem_type == "single_label"
    out = clf.predict(["I am so happy today", "thank you so much"])
    assert all(len(p["labels"]) == 1 and sum(p["scores"].values()) == pytest.approx(1.0, abs=1e-4) for p in out)


def test_contextual_mode_reacts_to_context(tmp_path: Path, synth_dir: Path, fast: dict, contexts: dict) -> None:
    cfg = TrainConfig(data=str(synth_dir), out=tmp_path, mode="contextual", max_steps=12, eval_every=12,
                      **fast | {"lr": 2e-4})  # fmt: skip
    train(cfg)
    clf = EmotionClassifier.from_pretrained(tmp_path)
    assert clf.mode == "contextual"
    text = "my heart is pounding"
    joy_ctx, fear_ctx = clf.predict_proba([text, text], [contexts["joy"], contexts["fear"]])
    joy, fear = LABEL2ID["joy"], LABEL2ID["fear"]
    assert joy_ctx[joy] - joy_ctx[fear] > fear_ctx[joy] - fear_ctx[fear]
    with pytest.raises(EmopillarsError, match="2 texts but 1 contexts"):
        clf.predict_proba([text, text], [contexts["joy"]])


def test_early_stopping_after_patience_evaluations(minilm: tuple, synth_dir: Path, fast: dict) -> None:
    model, tok = minilm
    cfg = TrainConfig(data=str(synth_dir), max_steps=20, eval_every=1, patience=2, **fast | {"lr": 1e-12})
    result = fit(cfg, model, tok, load_splits(cfg))  # a negligible lr: macro-F1 cannot improve after step 1
    assert result.stopped == "early_stopping" and result.steps == 3 and result.best_step == 1
    assert [e["step"] for e in result.evals] == [1, 2, 3]


def test_train_on_a_datasets_object_with_tensorboard_tracking(tmp_path: Path, fast: dict) -> None:
    """The Python API takes a DatasetDict in memory, returns a TrainResult, and logs through accelerate."""
    import datasets
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from emopillars import TrainResult, train
    from emopillars.taxonomy import LABELS

    from .conftest import example_rows

    rows = [r for r in example_rows() if r["mode"] == "contextless"]
    by_split = {s: [{"text": r["utterance"], "labels": r["labels"]} for r in rows if r["split"] == s]
                for s in ("train", "validation")}  # fmt: skip
    label_type = datasets.Sequence(datasets.ClassLabel(names=list(LABELS)))
    features = datasets.Features({"text": datasets.Value("string"), "labels": label_type})
    data = datasets.DatasetDict(
        {s: datasets.Dataset.from_list(part, features=features) for s, part in by_split.items()}
    )
    cfg = TrainConfig(out=tmp_path / "m", max_steps=2, eval_every=1, report_to="tensorboard", run_name="r1", **fast)
    result = train(cfg, data=data)
    assert isinstance(result, TrainResult) and result.out == tmp_path / "m" and result.metrics_file.is_file()
    assert result.validation["n"] == len(by_split["validation"]) and result.test is None
    events = list((tmp_path / "m" / "runs" / "r1").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "validation/macro_f1"} <= tags
    assert [e.step for e in acc.Scalars("validation/macro_f1")] == [1, 2]


def test_on_evaluate_sees_each_evaluation_and_can_stop_the_run(minilm: tuple, synth_dir: Path, fast: dict) -> None:
    """The hook `tune` prunes through: called after every evaluation; what it raises ends the run there."""
    model, tok = minilm
    cfg = TrainConfig(data=str(synth_dir), max_steps=8, eval_every=2, **fast)
    seen: list[tuple[int, float]] = []

    class Stop(Exception):
        pass

    def stop_at_4(step: int, metrics: dict) -> None:
        seen.append((step, metrics["macro_f1"]))
        if step == 4:
            raise Stop

    with pytest.raises(Stop):
        fit(cfg, model, tok, load_splits(cfg), on_evaluate=stop_at_4)
    assert [s for s, _ in seen] == [2, 4] and all(0.0 <= f <= 1.0 for _, f in seen)


def test_the_same_options_train_the_same_model_whatever_ran_before(tmp_path: Path, synth_dir: Path, fast: dict) -> None:
    """The seed covers the new head's random start: a second run in the same process (as tune's trials and
    `train --config best_config.json` after them) is the same model, even after other random draws."""
    cfg = TrainConfig(data=str(synth_dir), out=tmp_path / "a", max_steps=1, **fast)
    first = train(cfg).report["history"][0]["loss"]
    torch.rand(1000)  # what ran before moves the global generator
    again = train(cfg.model_copy(update={"out": tmp_path / "b"})).report["history"][0]["loss"]
    assert again == first
