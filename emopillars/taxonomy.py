"""The 28 GoEmotions labels and their mappings onto the label sets of downstream datasets.

The order is the canonical GoEmotions order (Demszky et al., 2020): label ids in every model,
JSON schema and export of this project index into `LABELS`.
"""

from __future__ import annotations

LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip
LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
NUM_LABELS = len(LABELS)

# Ekman grouping from the GoEmotions paper (Table 9 / the released ekman_mapping.json).
EKMAN: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism",
        "relief", "pride", "admiration", "desire", "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}  # fmt: skip

# Downstream label -> the GoEmotions labels whose head rows initialise it (rows are averaged).
# Each mapping is documented in the README ("Label mappings").
ISEAR: dict[str, tuple[str, ...]] = {
    "joy": ("joy",),
    "fear": ("fear",),
    "anger": ("anger",),
    "sadness": ("sadness",),
    "disgust": ("disgust",),
    "shame": ("embarrassment",),
    "guilt": ("remorse",),
}
IEMOCAP: dict[str, tuple[str, ...]] = {
    "neu": ("neutral",),
    "hap": ("joy",),
    "sad": ("sadness",),
    "ang": ("anger",),
    "exc": ("excitement",),
    "fru": ("annoyance", "disappointment"),
}
EMOCONTEXT: dict[str, tuple[str, ...]] = {
    "happy": ("joy", "amusement", "excitement"),
    "sad": ("sadness", "grief", "disappointment"),
    "angry": ("anger", "annoyance"),
    "others": ("neutral",),
}
GOEMOTIONS: dict[str, tuple[str, ...]] = {label: (label,) for label in LABELS}

MAPPINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "goemotions": GOEMOTIONS,
    "isear": ISEAR,
    "iemocap": IEMOCAP,
    "emocontext": EMOCONTEXT,
    "ekman": EKMAN,
}


def check_labels(names: list[str] | tuple[str, ...], where: str) -> None:
    """Raise a one-line error naming every label outside the taxonomy."""
    from emopillars.errors import EmopillarsError

    unknown = sorted({n for n in names if n not in LABEL2ID})
    if unknown:
        raise EmopillarsError(f"{where}: unknown emotion label(s) {unknown}; allowed: {', '.join(LABELS)}")
