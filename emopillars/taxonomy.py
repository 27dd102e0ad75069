"""The 28 GoEmotions labels, their definitions and the words that name them.

The order is the canonical GoEmotions order (Demszky et al., 2020): label ids in every model,
JSON schema and export of this project index into `LABELS`.
"""

from __future__ import annotations

import re

LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip
LABEL2ID: dict[str, int] = {label: i for i, label in enumerate(LABELS)}
NUM_LABELS = len(LABELS)

# Short definitions shown to the LLM (GoEmotions, Demszky et al. 2020, Table 7), so that a label is read by its
# meaning and not guessed from its name; neutral, which the paper leaves undefined, gets our own wording.
DEFINITIONS: dict[str, str] = {
    "admiration": "finding something impressive or worthy of respect",
    "amusement": "finding something funny or being entertained",
    "anger": "a strong feeling of displeasure or antagonism",
    "annoyance": "mild anger, irritation",
    "approval": "having or expressing a favorable opinion",
    "caring": "displaying kindness and concern for others",
    "confusion": "lack of understanding, uncertainty",
    "curiosity": "a strong desire to know or learn something",
    "desire": "a strong feeling of wanting something or wishing for something to happen",
    "disappointment": "sadness or displeasure caused by the nonfulfillment of one's hopes or expectations",
    "disapproval": "having or expressing an unfavorable opinion",
    "disgust": "revulsion or strong disapproval aroused by something unpleasant or offensive",
    "embarrassment": "self-consciousness, shame, or awkwardness",
    "excitement": "feeling of great enthusiasm and eagerness",
    "fear": "being afraid or worried",
    "gratitude": "a feeling of thankfulness and appreciation",
    "grief": "intense sorrow, especially caused by someone's death",
    "joy": "a feeling of pleasure and happiness",
    "love": "a strong positive emotion of regard and affection",
    "nervousness": "apprehension, worry, anxiety",
    "optimism": "hopefulness and confidence about the future or the success of something",
    "pride": "pleasure or satisfaction due to one's own achievements or those of people close to one",
    "realization": "becoming aware of something",
    "relief": "reassurance and relaxation following release from anxiety or distress",
    "remorse": "regret or guilty feeling",
    "sadness": "emotional pain, sorrow",
    "surprise": "feeling astonished, startled by something unexpected",
    "neutral": "no particular emotion: a plain statement, question or request",
}

# The words that name each label, with their inflections and close derivations (regex, matched on whole words,
# case-insensitive): an utterance that says "I'm so angry" names its emotion instead of showing it.
LABEL_WORDS: dict[str, str] = {
    "admiration": r"admir(?:e|es|ed|ing|ation|able|ably|er|ers)",
    "amusement": r"amus(?:e|es|ed|ing|ingly|ement)",
    "anger": r"anger(?:s|ed)?|angr(?:y|ier|iest|ily)",
    "annoyance": r"annoy(?:s|ed|ing|ingly|ance)?",
    "approval": r"approv(?:e|es|ed|ing|al)",
    "caring": r"car(?:e|es|ed|ing)",
    "confusion": r"confus(?:e|es|ed|ing|ion)",
    "curiosity": r"curio(?:us|usly|sity)",
    "desire": r"desir(?:e|es|ed|ing|able)",
    "disappointment": r"disappoint(?:s|ed|ing|ment|ments)?",
    "disapproval": r"disapprov(?:e|es|ed|ing|al)",
    "disgust": r"disgust(?:s|ed|ing|ingly)?",
    "embarrassment": r"embarrass(?:es|ed|ing|ment)?",
    "excitement": r"excit(?:e|es|ed|ing|ement)",
    "fear": r"fear(?:s|ed|ing|ful|fully)?",
    "gratitude": r"gratitude|grateful(?:ly)?",
    "grief": r"grie(?:f|fs|ve|ves|ved|ving)",
    "joy": r"joy(?:s|ful|fully|ous|ously)?",
    "love": r"lov(?:e|es|ed|ing|ingly)",
    "nervousness": r"nervous(?:ly|ness)?",
    "optimism": r"optimis(?:m|t|tic|tically)",
    "pride": r"pride|proud(?:er|est|ly)?",
    "realization": r"reali[sz](?:e|es|ed|ing|ation)",
    "relief": r"relie(?:f|ve|ves|ved|ving)",
    "remorse": r"remorse(?:ful|fully)?",
    "sadness": r"sad(?:der|dest|ly|ness|den|dened)?",
    "surprise": r"surpris(?:e|es|ed|ing|ingly)",
    "neutral": r"neutral(?:ly)?",
}


def names_label(text: str, label: str) -> bool:
    """Whether `text` contains the word naming `label` or one of its inflections."""
    return re.search(rf"\b(?:{LABEL_WORDS[label]})\b", text, flags=re.IGNORECASE) is not None


def check_labels(names: list[str] | tuple[str, ...], where: str) -> None:
    """Raise a one-line error naming every label outside the taxonomy."""
    from emopillars.errors import EmopillarsError

    unknown = sorted({n for n in names if n not in LABEL2ID})
    if unknown:
        raise EmopillarsError(f"{where}: unknown emotion label(s) {unknown}; allowed: {', '.join(LABELS)}")
