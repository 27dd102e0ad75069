"""Split a document into bounded-length passages without losing or reordering any text.

Paragraphs are the natural unit; a paragraph too long for one passage falls back to sentences,
and a sentence too long falls back to a hard cut at a word boundary. The units are then packed
greedily, so `" ".join(split_passages(doc, n)) == normalise_whitespace(doc)` holds (the one
exception: a single word longer than a passage is cut mid-word, which adds a space at the cut).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")
# A word that ends a sentence: terminal punctuation, then any closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$")


def normalise_whitespace(text: str) -> str:
    """Collapse every run of whitespace (newlines included) to one space."""
    return " ".join(text.split())


def passage_id(doc_id: str, k: int, text: str) -> str:
    """Stable, content-derived id: a rerun over the same corpus yields the same ids."""
    return f"{doc_id}-p{k}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"


def _sentences(paragraph: str) -> Iterator[str]:
    words: list[str] = []
    for word in paragraph.split(" "):
        words.append(word)
        if _SENTENCE_END.search(word):
            yield " ".join(words)
            words = []
    if words:
        yield " ".join(words)


def _hard_cut(sentence: str, max_chars: int) -> Iterator[str]:
    """Cut at the last space that fits; a single word longer than max_chars is cut mid-word."""
    while len(sentence) > max_chars:
        cut = sentence.rfind(" ", 0, max_chars + 1)
        if cut <= 0:
            yield sentence[:max_chars]
            sentence = sentence[max_chars:]
        else:
            yield sentence[:cut]
            sentence = sentence[cut + 1 :]
    if sentence:
        yield sentence


def _units(text: str, max_chars: int) -> Iterator[str]:
    """Paragraphs that fit, else their sentences that fit, else hard-cut pieces."""
    for raw in _PARAGRAPH_BREAK.split(text):
        paragraph = normalise_whitespace(raw)
        if len(paragraph) <= max_chars:
            if paragraph:
                yield paragraph
            continue
        for sentence in _sentences(paragraph):
            yield from _hard_cut(sentence, max_chars)


def split_passages(text: str, max_chars: int) -> list[str]:
    """Pack paragraphs (or sentences of over-long ones) greedily into passages of <= max_chars.

    Args:
        text: a whole document; any whitespace layout, paragraphs separated by blank lines.
        max_chars: the longest passage allowed, in characters.

    Returns:
        The passages in document order; joined by single spaces they give the
        whitespace-normalised document.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    passages: list[str] = []
    current = ""
    for unit in _units(text, max_chars):
        if current and len(current) + 1 + len(unit) <= max_chars:
            current = f"{current} {unit}"
        else:
            if current:
                passages.append(current)
            current = unit
    if current:
        passages.append(current)
    return passages
