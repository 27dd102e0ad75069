"""Teacher annealing (the target moves from teacher to gold) and born-again generations (BAM!)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from emopillars.distill.config import TrainConfig
from emopillars.distill.data import load_splits
from emopillars.distill.losses import SoftBCE, SoftCrossEntropy, TeacherAnnealing, build_objective
from emopillars.distill.trainer import fit, train
from emopillars.inference.classifier import EmotionClassifier


@pytest.mark.parametrize("multi_label", [True, False])
def test_annealed_target_goes_from_the_teacher_to_gold(multi_label: bool) -> None:
    torch.manual_seed(0)
    logits, teacher, gold = torch.randn(4, 5), torch.randn(4, 5), torch.rand(4, 5)
    base = SoftBCE() if multi_label else SoftCrossEntropy()
    q = teacher.sigmoid() if multi_label else teacher.softmax(-1)
    term = TeacherAnnealing(base, multi_label)
    for lam in (0.0, 0.3, 1.0):
        expected = base(logits, lam * gold + (1 - lam) * q)
        assert term(logits, gold, teacher, torch.tensor(lam)) == pytest.approx(expected.item(), rel=1e-6)
    assert term(logits, gold, teacher, torch.tensor(1.0)) == pytest.approx(base(logits, gold).item(), rel=1e-6)


def test_annealing_needs_a_teacher_and_replaces_kd(synth_dir: Path) -> None:
    with pytest.raises(ValueError, match="teacher_annealing needs a teacher"):
        TrainConfig(teacher_annealing=True)
    with pytest.raises(ValueError, match="born_again and rounds"):
        TrainConfig(born_again=2, rounds=2, unlabeled="pool.txt")
    cfg = TrainConfig(data=str(synth_dir), born_again=2, teacher_annealing=True)
    objective = build_objective(cfg, load_splits(cfg).train, distil=True)
    assert objective.anneals and isinstance(objective.terms["task"], TeacherAnnealing)
    assert not objective.without_kd().anneals  # validation: the plain loss against gold


def test_logged_lambda_goes_from_0_to_1(trained: tuple[Path, dict], minilm: tuple, synth_dir: Path, fast: dict) -> None:
    model, tok = minilm
    cfg = TrainConfig(data=str(synth_dir), max_steps=3, teacher_annealing=True, teacher=str(trained[0]), **fast)
    result = fit(cfg, model, tok, load_splits(cfg), EmotionClassifier.from_pretrained(trained[0]))
    assert [h["teacher_lambda"] for h in result.history] == [0.0, 0.5, 1.0]
    assert "kd" not in result.history[0]  # the annealed target replaces the KD term


def test_born_again_generations_keep_the_best(tmp_path: Path, synth_dir: Path, fast: dict) -> None:
    cfg = TrainConfig(data=str(synth_dir), out=tmp_path, max_steps=2, born_again=2, teacher_annealing=True, **fast)
    report = train(cfg).report
    generations = report["generations"]
    assert [g["generation"] for g in generations] == [1, 2]
    assert not generations[0]["teacher"] and generations[1]["teacher"] and generations[1]["teacher_annealing"]
    scores = [g["validation"]["macro_f1"] for g in generations]
    best = report["best_generation"]
    assert scores[best - 1] == max(scores) and report["validation"]["macro_f1"] == pytest.approx(max(scores))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["generations"] == generations and "rounds" not in saved
    card = (tmp_path / "README.md").read_text()
    assert "### Born-again generations" in card and f"generation {best} (best validation macro-F1)" in card
    assert "**Teacher annealing**" in card
