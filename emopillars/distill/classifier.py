"""`EmotionClassifier`: a trained emopillars model folder, ready to label texts.

Public API (stable):
    EmotionClassifier.from_pretrained(path, device=None) -> EmotionClassifier
    clf.predict(texts, contexts=None) -> list[{"labels": [...], "scores": {label: prob}}]
        labels: scores at or above each label's tuned threshold (multi_label), or the argmax
        (single_label); scores: every label's probability (sigmoid or softmax).
    clf.predict_proba(texts, contexts=None) -> np.ndarray (N, L)
    clf.save_pretrained(path)
    clf.labels, clf.thresholds (np.ndarray (L,)), clf.mode, clf.problem_type, clf.model, clf.tokenizer

The folder is a plain `save_pretrained` one: `transformers.pipeline("text-classification",
model=path, top_k=None)` loads it; `config.emopillars` holds mode, problem_type, thresholds and
max_length (thresholds also in thresholds.json).
"""
