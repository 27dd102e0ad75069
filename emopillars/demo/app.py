"""The Gradio page of `emopillars demo`: a Classify tab and a Corpus tab.

Every handler returns a message for the page instead of raising: a user error (EmopillarsError)
shows its sentence, anything else "error: ..." with the traceback in the server log only. The
classifier and the corpus are cached by path (`functools.lru_cache`), not kept in `gr.State`,
which would deep-copy a model per browser session.
"""

from __future__ import annotations

import html
import logging
import os
from functools import lru_cache
from typing import Any

import numpy as np

from emopillars.demo.corpus import ALL, Corpus, load_corpus, per_label_counts
from emopillars.errors import EmopillarsError
from emopillars.taxonomy import LABELS

log = logging.getLogger(__name__)
SHOWN_EXAMPLES = 50  # cards rendered per filter; the count line says how many matched


@lru_cache(maxsize=2)
def load_classifier(path: str) -> Any:
    from emopillars.inference.classifier import EmotionClassifier

    return EmotionClassifier.from_pretrained(path.strip())


def _message(exc: Exception) -> str:
    if not isinstance(exc, EmopillarsError):
        log.exception("demo handler failed")
    return f"**error:** {exc}" if isinstance(exc, EmopillarsError) else f"**error:** {type(exc).__name__}: {exc}"


# --- Classify ----------------------------------------------------------------------------------------


def score_figure(labels: tuple[str, ...], scores: np.ndarray, thresholds: np.ndarray, chosen: set[str]) -> Any:
    """Horizontal bars of every label's score, the label's threshold as a black tick, predicted labels coloured."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 0.22 * len(labels) + 0.8), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(labels))
    ax.barh(y, scores, color=["tab:orange" if name in chosen else "tab:blue" for name in labels])
    ax.scatter(thresholds, y, marker="|", s=120, color="black", label="threshold", zorder=3)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("score")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def highlight(text: str, words: list[dict]) -> list[tuple[str, float | None]]:
    """The text cut into (span, attribution scaled to [-1, 1]) with the gaps between words as (gap, None)."""
    peak = max((abs(w["attribution"]) for w in words), default=0.0) or 1.0
    spans: list[tuple[str, float | None]] = []
    at = 0
    for w in words:
        if w["start"] > at:
            spans.append((text[at : w["start"]], None))
        spans.append((text[w["start"] : w["end"]], round(w["attribution"] / peak, 4)))
        at = w["end"]
    if at < len(text):
        spans.append((text[at:], None))
    return spans


def classify(model_path: str, text: str, context: str) -> tuple[str, str, Any, Any]:
    """(message, predicted labels, score figure, highlighted attributions) for one text."""
    import gradio as gr

    empty = ("", None, gr.HighlightedText(value=None))
    try:
        if not model_path.strip():
            raise EmopillarsError("no model loaded: give a model folder (emopillars demo --model DIR)")
        if not text.strip():
            raise EmopillarsError("type a sentence to classify")
        clf = load_classifier(model_path)
        ctx = context.strip() or None if clf.mode == "contextual" else None
        pred = clf.predict([text], None if ctx is None else [ctx])[0]
        scores = np.array([pred["scores"][name] for name in clf.labels])
        figure = score_figure(clf.labels, scores, clf.thresholds, set(pred["labels"]))
        names = ", ".join(pred["labels"]) or "(none above its threshold)"
        if clf.backend == "onnx":
            words = gr.HighlightedText(value=None, label="word attributions need the torch model folder")
        else:
            top = clf.explain([text], None if ctx is None else [ctx])[0]["explanations"][0]
            title = f"word attributions for {top['label']} (Integrated Gradients; red raises the score)"
            words = gr.HighlightedText(value=highlight(text, top["words"]), label=title)
        return "", names, figure, words
    except Exception as exc:
        return (_message(exc), *empty)


# --- Corpus ------------------------------------------------------------------------------------------


def counts_figure(rows: list[dict]) -> Any:
    """Examples per target emotion, one bar colour per mode."""
    from matplotlib.figure import Figure

    counts = per_label_counts(rows)
    fig = Figure(figsize=(6, 0.22 * len(LABELS) + 0.8), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(LABELS))
    left = np.zeros(len(LABELS))
    for mode, counter in sorted(counts.items()):
        values = np.array([counter.get(name, 0) for name in LABELS])
        ax.barh(y, values, left=left, label=mode)
        left += values
    ax.set_yticks(y, LABELS, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("examples")
    ax.xaxis.get_major_locator().set_params(integer=True)
    if counts:
        ax.legend(loc="lower right", fontsize=8)
    return fig


def example_card(row: dict) -> str:
    """One example as HTML: utterance, character, context, labels, top soft labels, explication."""
    e = html.escape
    soft = sorted(((k, v) for k, v in (row.get("soft_labels") or {}).items() if v > 0), key=lambda kv: -kv[1])[:5]
    facts = [f"{row.get('mode')} / {row.get('split')}", f"target {row.get('target_emotion')}"]
    optional = (("expressiveness", "expressiveness"), ("primary_emotion", "primary"), ("label_agreement", "agreement"))
    facts += [f"{name} {row[key]}" for key, name in optional if row.get(key) is not None]
    parts = [
        f"<p><b>&ldquo;{e(row['utterance'])}&rdquo;</b> &mdash; {e(str(row.get('character') or '?'))}"
        f" <small>({e(' · '.join(facts))})</small></p>",
    ]
    if row.get("character_description"):
        parts.append(f"<p><small>character: {e(row['character_description'])}</small></p>")
    if row.get("context"):
        parts.append(f"<p><small>context: {e(row['context'])}</small></p>")
    labels = ", ".join(row.get("labels") or []) or "none"
    parts.append(f"<p><small>labels: {e(labels)} · soft: {e(', '.join(f'{k} {v:.2f}' for k, v in soft))}</small></p>")
    if row.get("explication"):
        parts.append(f"<p><small><i>{e(row['explication'])}</i></small></p>")
    return f"<div class='example' style='border-bottom:1px solid #ddd'>{''.join(parts)}</div>"


def browse(folder: str, label: str, mode: str, split: str, expressiveness: str) -> tuple[str, Any, list, str]:
    """(message / match count, counts figure, fidelity rows, example cards) for the current filters."""
    try:
        if not folder.strip():
            raise EmopillarsError("no run loaded: give a synth output folder (emopillars demo --data DIR)")
        corpus = load_corpus(folder.strip())
        rows = corpus.select(label or ALL, mode or ALL, split or ALL, expressiveness or ALL)
        fidelity = corpus.fidelity_rows() or [["(this run's report has no fidelity section)", ""]]
        shown = f"{len(rows)} of {len(corpus.examples)} examples match"
        if len(rows) > SHOWN_EXAMPLES:
            shown += f" (first {SHOWN_EXAMPLES} shown)"
        cards = "".join(example_card(r) for r in rows[:SHOWN_EXAMPLES])
        return shown, counts_figure(rows), fidelity, cards
    except Exception as exc:
        return _message(exc), None, [], ""


def filter_choices(folder: str) -> tuple[Any, ...]:
    """Fresh choices for the four filters from a newly loaded run (all reset to ALL)."""
    import gradio as gr

    try:
        corpus: Corpus | None = load_corpus(folder.strip()) if folder.strip() else None
    except Exception:  # browse() reports it
        corpus = None
    names = ("label", "mode", "split", "expressiveness")
    choices = [corpus.choices(n) if corpus else [ALL] for n in names]
    return tuple(
        gr.Dropdown(choices=c, value=ALL) if n == "label" else gr.Radio(choices=c, value=ALL)
        for n, c in zip(names, choices, strict=True)
    )


# --- the page ----------------------------------------------------------------------------------------


def build(model: str | None = None, data: str | None = None) -> Any:
    """The two-tab page, with `model` and `data` filled in (each can be changed on the page)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    mode_hint = "Context (for context-aware models)"
    try:
        contextual = bool(model) and load_classifier(model).mode == "contextual"
    except Exception:  # shown on the page at the first Classify
        contextual = False
    start = filter_choices(data or "")
    with gr.Blocks(title="emopillars demo", analytics_enabled=False) as page:
        gr.Markdown("# emopillars demo")
        with gr.Tab("Classify", id="classify"):
            with gr.Row():
                model_box = gr.Textbox(value=model or "", label="Model folder", scale=4)
            text = gr.Textbox(label="Text", placeholder="I can't believe you remembered!", lines=2, elem_id="text")
            context = gr.Textbox(label=mode_hint, interactive=contextual, lines=2,
                                 info=None if contextual else "this model reads the text alone")  # fmt: skip
            go = gr.Button("Classify", variant="primary")
            message = gr.Markdown(elem_id="classify-message")
            predicted = gr.Textbox(label="Predicted labels", interactive=False, elem_id="predicted-labels")
            with gr.Row():
                chart = gr.Plot(label="Scores (black ticks: thresholds)")
                words = gr.HighlightedText(label="Word attributions", elem_id="attributions")
            go.click(classify, [model_box, text, context], [message, predicted, chart, words])
            text.submit(classify, [model_box, text, context], [message, predicted, chart, words])
        with gr.Tab("Corpus", id="corpus"):
            with gr.Row():
                folder = gr.Textbox(value=data or "", label="Synth run folder", scale=4, elem_id="run-folder")
                load = gr.Button("Load", scale=1)
            with gr.Row():
                label = gr.Dropdown(choices=start[0].choices, value=ALL, label="Label", elem_id="label-filter")
                mode = gr.Radio(choices=start[1].choices, value=ALL, label="Mode", elem_id="mode-filter")
                split = gr.Radio(choices=start[2].choices, value=ALL, label="Split", elem_id="split-filter")
                expressiveness = gr.Radio(choices=start[3].choices, value=ALL, label="Expressiveness",
                                          elem_id="expressiveness-filter")  # fmt: skip
            count = gr.Markdown(elem_id="corpus-count")
            with gr.Row():
                counts = gr.Plot(label="Examples per target emotion")
                fidelity = gr.Dataframe(headers=["metric", "value"], label="Fidelity (report.json)",
                                        interactive=False, elem_id="fidelity")  # fmt: skip
            cards = gr.HTML(elem_id="examples")
            filters = [folder, label, mode, split, expressiveness]
            outputs = [count, counts, fidelity, cards]
            load.click(filter_choices, folder, [label, mode, split, expressiveness]).then(browse, filters, outputs)
            for box in (label, mode, split, expressiveness):
                box.change(browse, filters, outputs)
            page.load(browse, filters, outputs)
    return page


def launch(model: str | None, data: str | None, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the page until interrupted (binds `host`, 127.0.0.1 unless told otherwise)."""
    page = build(model, data)
    page.launch(server_name=host, server_port=port, share=False, ssr_mode=False, mcp_server=False,
                footer_links=[], quiet=False)  # fmt: skip
