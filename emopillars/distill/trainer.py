"""Training an encoder + linear head on `Splits`: a nanoGPT-style loop driven by `accelerate`.

Public API (stable; `emopillars finetune` reuses it, no second trainer):
    train(cfg: TrainConfig, data: Splits | None = None, head_init: HeadInit | None = None) -> dict
        The whole `emopillars train`: load data (unless given), build the model (optionally with
        the caller's initial classifier rows), run the rounds (KD from `cfg.teacher`, pseudo-labels
        from `cfg.unlabeled`), tune thresholds on validation, evaluate validation and test, and
        write the model folder `cfg.out` (save_pretrained + thresholds.json, metrics.json,
        config.json, README.md, plots). Returns the metrics report (what metrics.json holds).
    fit(cfg, model, tokenizer, data, teacher=None, run_dir=None) -> FitResult
        One training run of `model` on `data.train`, evaluated on `data.validation`; keeps the best
        weights by macro-F1 (multi_label) or accuracy-tied macro-F1 (single_label).
    predict_logits(model, tokenizer, texts, contexts, max_length, batch_size) -> np.ndarray (N, L)
        The one inference path: training evaluation, `EmotionClassifier` and metrics all use it,
        so test metrics equal what `emopillars predict` prints.

    HeadInit = tuple[Tensor (L, H) weight, Tensor (L,) bias]: rows of the new classifier, e.g.
    averaged rows of a 28-label emopillars model mapped onto a downstream label set.

Evaluation helpers live in `emopillars.distill.metrics` (compute_metrics(y_true, scores,
thresholds, labels, single_label)) and `emopillars.distill.thresholds` (tune_thresholds).
"""
