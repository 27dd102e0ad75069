"""The Gradio page of `emopillars demo`: a Classify tab and a Corpus tab.

Every handler takes the page's `Offer` first (bound with `functools.partial`) and passes each model or
run name it was sent through it before reading anything: the page's dropdowns are no guard against
Gradio's API. Every handler returns a message for the page instead of raising: a user error
(EmopillarsError) shows its sentence, anything else "error: ..." with the traceback in the server log
only. Classifiers and corpora are cached by name (`functools.lru_cache`), not kept in `gr.State`,
which would deep-copy a model per browser session.
"""

from __future__ import annotations

import html
import logging
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

import numpy as np

from emopillars.demo.corpus import ALL, Corpus, load_corpus, per_label_counts
from emopillars.demo.offer import Offer, free_paths_notice, is_loopback
from emopillars.errors import EmopillarsError
from emopillars.taxonomy import LABELS

log = logging.getLogger(__name__)
SHOWN_EXAMPLES = 50  # cards rendered per filter; the count line says how many matched
CONTEXTLESS = "this model reads the text alone"
_LOADING = threading.Lock()  # two first requests for one model load it once


@dataclass
class Loaded:
    """A classifier and the lock its requests take turns on: Integrated Gradients hooks the model's shared
    embedding layer (captum), so a predict running beside an explanation would read the hooked embeddings."""

    clf: Any
    busy: threading.Lock = field(default_factory=threading.Lock)


@lru_cache(maxsize=4)
def _load(name: str) -> Loaded:
    from emopillars.inference.classifier import EmotionClassifier

    return Loaded(EmotionClassifier.from_pretrained(name))


def load_classifier(name: str) -> Loaded:
    """The classifier `name` (a name `Offer.model` let through), loaded once and shared by all requests."""
    with _LOADING:
        return _load(name)


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


def predicted_names(labels: list[str]) -> str:
    """The "Predicted labels" box: what `predict` decides, in the model's label order."""
    return ", ".join(labels) or "(none above its threshold)"


def classify(offer: Offer, model: str | None, text: str, context: str) -> tuple[str, str, Any, Any]:
    """(message, predicted labels, score figure, highlighted attributions) for one text.

    Attributions are for the top predicted label (the top-scoring one when none passes its threshold):
    one Integrated Gradients pass, however many labels are predicted.
    """
    import gradio as gr

    empty = ("", None, gr.HighlightedText(value=None))
    try:
        name = offer.model(model)
        if not text.strip():
            raise EmopillarsError("type a sentence to classify")
        loaded = load_classifier(name)
        clf = loaded.clf
        ctx = [context.strip()] if clf.mode == "contextual" and context.strip() else None
        with loaded.busy:
            pred = clf.predict([text], ctx)[0]
            top = max(pred["labels"] or clf.labels, key=pred["scores"].__getitem__)
            explained = None if clf.backend == "onnx" else clf.explain([text], ctx, label=top)[0]["explanations"][0]
        scores = np.array([pred["scores"][label] for label in clf.labels])
        figure = score_figure(clf.labels, scores, clf.thresholds, set(pred["labels"]))
        if explained is None:
            words = gr.HighlightedText(value=None, label="word attributions need the torch model folder")
        else:
            title = f"word attributions for {top} (Integrated Gradients; red raises the score)"
            words = gr.HighlightedText(value=highlight(text, explained["words"]), label=title)
        return "", predicted_names(pred["labels"]), figure, words
    except Exception as exc:
        return (_message(exc), *empty)


def is_contextual(offer: Offer, model: str | None) -> bool:
    """Whether the chosen model reads a context (False when it cannot be loaded: Classify reports that)."""
    try:
        return load_classifier(offer.model(model)).clf.mode == "contextual"
    except Exception:
        return False


def context_box(offer: Offer, model: str | None) -> Any:
    """The context box for the chosen model: open for a context-aware one, greyed out otherwise."""
    import gradio as gr

    contextual = is_contextual(offer, model)
    return gr.Textbox(interactive=contextual, info=None if contextual else CONTEXTLESS)


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


def browse(
    offer: Offer, run: str | None, label: str, mode: str, split: str, expressiveness: str
) -> tuple[str, Any, list, str]:
    """(message / match count, counts figure, fidelity rows, example cards) for the current filters."""
    try:
        corpus = load_corpus(offer.run(run))
        rows = corpus.select(label or ALL, mode or ALL, split or ALL, expressiveness or ALL)
        fidelity = corpus.fidelity_rows() or [["(this run's report has no fidelity section)", ""]]
        shown = f"{len(rows)} of {len(corpus.examples)} examples match"
        if len(rows) > SHOWN_EXAMPLES:
            shown += f" (first {SHOWN_EXAMPLES} shown)"
        cards = "".join(example_card(r) for r in rows[:SHOWN_EXAMPLES])
        return shown, counts_figure(rows), fidelity, cards
    except Exception as exc:
        return _message(exc), None, [], ""


def filter_choices(offer: Offer, run: str | None) -> tuple[Any, ...]:
    """Fresh choices for the four filters from a newly loaded run (all reset to ALL)."""
    import gradio as gr

    try:
        corpus: Corpus | None = load_corpus(offer.run(run))
    except Exception:  # browse() reports it
        corpus = None
    names = ("label", "mode", "split", "expressiveness")
    choices = [corpus.choices(n) if corpus else [ALL] for n in names]
    return tuple(
        gr.Dropdown(choices=c, value=ALL) if n == "label" else gr.Radio(choices=c, value=ALL)
        for n, c in zip(names, choices, strict=True)
    )


# --- the page ----------------------------------------------------------------------------------------


def chooser(offered: tuple[str, ...], offer: Offer, kind: str, elem_id: str) -> Any:
    """A dropdown of the owner's models or runs; free text too only under `--allow-paths`."""
    import gradio as gr

    info = f"a {kind} folder{' or Hub id' if kind == 'model' else ''} (this page was started with --allow-paths)"
    return gr.Dropdown(choices=list(offered), value=offered[0] if offered else None, label=kind.capitalize(),
                       allow_custom_value=offer.allow_paths, info=info if offer.allow_paths else None,
                       elem_id=elem_id, scale=4)  # fmt: skip


def classify_tab(offer: Offer) -> None:
    """The Classify tab's components and events (inside an open `gr.Blocks`)."""
    import gradio as gr

    with gr.Row():
        model = chooser(offer.models, offer, "model", "model")
    text = gr.Textbox(label="Text", placeholder="I can't believe you remembered!", lines=2, elem_id="text")
    contextual = is_contextual(offer, offer.models[0] if offer.models else None)
    context = gr.Textbox(label="Context (for context-aware models)", interactive=contextual, lines=2,
                         info=None if contextual else CONTEXTLESS)  # fmt: skip
    go = gr.Button("Classify", variant="primary")
    message = gr.Markdown(elem_id="classify-message")
    predicted = gr.Textbox(label="Predicted labels", interactive=False, elem_id="predicted-labels")
    with gr.Row():
        chart = gr.Plot(label="Scores (black ticks: thresholds)")
        words = gr.HighlightedText(label="Word attributions", elem_id="attributions")
    gr.on([go.click, text.submit], partial(classify, offer), [model, text, context], [message, predicted, chart, words],
          api_name="classify")  # fmt: skip
    model.change(partial(context_box, offer), model, context, api_name="context_box")


def corpus_tab(offer: Offer, page: Any) -> None:
    """The Corpus tab's components and events (inside an open `gr.Blocks`)."""
    import gradio as gr

    start = filter_choices(offer, offer.runs[0] if offer.runs else None)
    with gr.Row():
        run = chooser(offer.runs, offer, "run", "run-folder")
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
    filters = [run, label, mode, split, expressiveness]
    outputs = [count, counts, fidelity, cards]
    shown = partial(browse, offer)
    load.click(partial(filter_choices, offer), run, filters[1:], api_name="filter_choices").then(
        shown, filters, outputs, api_visibility="private"
    )
    triggers = [box.change for box in filters[1:]] + [page.load]
    gr.on(triggers, shown, filters, outputs, api_name="browse")


def build(offer: Offer) -> Any:
    """The two-tab page; it loads only what `offer` lets through (see `emopillars/demo/offer.py`)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    with gr.Blocks(title="emopillars demo", analytics_enabled=False) as page:
        gr.Markdown("# emopillars demo")
        with gr.Tab("Classify", id="classify"):
            classify_tab(offer)
        with gr.Tab("Corpus", id="corpus"):
            corpus_tab(offer, page)
    return page


def launch(offer: Offer, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 4) -> None:
    """Serve the page until interrupted (binds `host`, 127.0.0.1 unless told otherwise).

    `concurrency` is the Gradio queue's limit per event: requests worked on at once, beyond which they
    wait in the queue. Model calls still take turns per model (`Loaded.busy`); the rest (figures,
    Gradio's encoding) overlaps.
    """
    notice = free_paths_notice(offer, host)
    if notice:
        log.log(logging.INFO if is_loopback(host) else logging.WARNING, notice)
    page = build(offer)
    page.queue(default_concurrency_limit=concurrency)
    page.launch(server_name=host, server_port=port, share=False, ssr_mode=False, mcp_server=False,
                footer_links=[], quiet=False)  # fmt: skip
