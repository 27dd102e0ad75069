"""The dataset card of a synth run: `README.md` with a Hub-ready YAML header, plus its two plots.

Built with `huggingface_hub.DatasetCard`, so the header is the metadata the Hub reads (license, task, size, tags)
and `emopillars push` / `datasets.push_to_hub` can upload the run folder as it is.
"""

from __future__ import annotations

from pathlib import Path

from emopillars.synth.config import SynthConfig
from emopillars.synth.report import SynthReport, fidelity_rows
from emopillars.taxonomy import LABELS

PLOTS = ("examples_per_label.png", "first_pick_positions.png")


def write_card(config: SynthConfig, report: SynthReport) -> Path:
    """Write `README.md` and the plots into the run folder; returns the card's path."""
    from huggingface_hub import DatasetCard, DatasetCardData

    out = config.out
    _plot_examples(report, out / PLOTS[0])
    _plot_first_picks(report.fidelity["first_pick_positions"], out / PLOTS[1])
    total = sum(report.examples.values())
    data = DatasetCardData(
        license="apache-2.0",
        language=["en"],
        task_categories=["text-classification"],
        task_ids=["multi-label-classification"],
        size_categories=[_size_category(total)],
        tags=["synthetic", "emotion", "goemotions", "emopillars"],
        pretty_name=f"emopillars synthetic emotions ({out.name})",
        configs=[{"config_name": "default", "data_dir": "dataset"}],
    )
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{_body(config, report)}")
    path = out / "README.md"
    card.save(path)
    return path


def _body(config: SynthConfig, report: SynthReport) -> str:
    f = report.fidelity
    rows = "\n".join(f"| {name} | {value} |" for name, value in fidelity_rows(f))
    prompts = "\n".join(f"| `{name}` | `{digest}` |" for name, digest in report.prompts.items())
    counts = "\n".join(
        f"| {label} | {report.per_label_by_mode['contextual'].get(label, 0)} "
        f"| {report.per_label_by_mode['contextless'].get(label, 0)} |"
        for label in LABELS
    )
    dropped = ", ".join(f"{reason} {n}" for reason, n in report.dropped.items()) or "none"
    n = report.examples
    return f"""# Synthetic emotion corpus ({n["contextual"]} contextual, {n["contextless"]} context-less)

Made by [emopillars](https://pypi.org/project/emopillars/) `synth` the Emo Pillars way: the generator read
{report.passages} story passages, picked {report.characters} characters, wrote what each says in a scheduled target
emotion and expressiveness (contextual examples), rewrote each utterance to stand alone (context-less examples), and
labelled every utterance blind {config.label_samples} times over the 28 GoEmotions labels, each time in its own
shuffled label order; the soft label is the mean score. Near-duplicates were removed by embedding similarity.

**The labels are model judgements, not human ones.** Read the fidelity table before training on them.

## Generation

| | |
|---|---|
| generator | `{report.model}` ({report.backend}) |
| generation sampling (characters, scenes, rewrites) | temperature {config.temperature}, top_p {config.top_p} |
| label sampling | temperature {config.label_temperature}, top_p {config.top_p}, {config.label_samples} samples |
| seed | {config.seed} |
| filters | target score >= {config.target_threshold}; label threshold {config.label_threshold}; \
emotion words {"allowed" if config.allow_emotion_words else "dropped"}; dedup cosine >= {config.dedup_threshold} |
| dropped | {dropped} |
| LLM calls | {report.llm_calls + report.cached_calls} (this run sent {report.llm_calls}: \
{report.prompt_tokens} prompt, {report.generated_tokens} generated tokens) |

Prompt templates (versioned files, sha256 prefix):

| template | sha256 |
|---|---|
{prompts}

## Fidelity

Definitions: emopillars `docs/fidelity.md`.

| measure | value |
|---|---|
{rows}

![first pick positions]({PLOTS[1]})

## Examples per label

| label | contextual | context-less |
|---|---|---|
{counts}

![examples per label]({PLOTS[0]})

## Fields

`id`, `mode` (contextual / contextless), `split`, `passage_id`, `character`, `character_description`, `context`
(null when context-less), `utterance`, `target_emotion`, `expressiveness` (explicit / implicit / subtle),
`soft_labels` (28 scores in [0, 1]), `labels` (scores >= the label threshold), `primary_emotion` (argmax),
`label_agreement` (mean pairwise Jaccard of the samples' label sets), `explication` (the labeller's account),
`source_id` (a context-less example's contextual source). Splits are by passage.

```python
from datasets import load_from_disk
corpus = load_from_disk("{config.out}/dataset")
```
"""


def _size_category(n: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return name
    return "1M<n<10M"


def _plot_examples(report: SynthReport, path: Path) -> None:
    from emopillars.distill.plots import plt

    fig, ax = plt.subplots(figsize=(10, 4))
    x = range(len(LABELS))
    for shift, mode in ((-0.2, "contextual"), (0.2, "contextless")):
        ax.bar([i + shift for i in x], [report.per_label_by_mode[mode].get(lb, 0) for lb in LABELS], 0.4, label=mode)
    ax.set_xticks(list(x), LABELS, rotation=70, fontsize=8)
    ax.set(ylabel="examples", title="examples per target label")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_first_picks(positions: list[int], path: Path) -> None:
    from emopillars.distill.plots import plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(range(1, len(positions) + 1), positions, color="C3")
    ax.set(
        xlabel="position of the first-listed emotion in the shown list", ylabel="label calls",
        title="order bias: an unbiased labeller spreads over positions",
    )  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
