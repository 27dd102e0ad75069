"""The Hugging Face Hub round trip: models in by id or folder, models and corpora out.

Everything goes through `huggingface_hub` (its cache, `HF_HUB_OFFLINE`, `HF_HUB_CACHE`, tokens,
revisions): a trained model is found as a local folder first, else downloaded (or found in the cache)
as `org/name` or `org/name@revision`. Uploads are one `HfApi.create_commit` of `CommitOperationAdd`s
built by `upload_operations`, so the file list is testable without a network.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from emopillars.config import StrictModel
from emopillars.errors import EmopillarsError
from emopillars.sources import locate

if TYPE_CHECKING:
    from huggingface_hub import CommitOperationAdd

log = logging.getLogger(__name__)

Kind = Literal["model", "dataset"]
# A trained model needs only these; weights of other frameworks or checkpoints are never fetched.
MODEL_FILES = ["*.json", "*.safetensors", "*.onnx", "*.txt", "*.model", "*.md", "*.png"]


class HubOptions(StrictModel):
    """Where a finished run goes on the Hub (a CLI option group of synth, train and finetune)."""

    push_to_hub: str | None = Field(None, description="Upload the result to this Hub repo (org/name) when done.")
    hub_private: bool = Field(False, description="Create the Hub repo as private.")


def resolve_model(ref: str | Path, revision: str | None = None) -> Path:
    """A local model folder, or a Hub id (`org/name[@revision]`) downloaded or found in the HF cache.

    Which of the two `ref` is, `sources.locate` decides, as for every input.
    """
    try:
        located = locate(ref, "model folder")
    except EmopillarsError:  # a path that is missing: named by the one check of a local folder below
        located = Path(ref).expanduser()
    if isinstance(located, Path):
        if not (located / "config.json").is_file():
            raise EmopillarsError(f"model folder not found or has no config.json: {located}")
        return located
    repo_id, _, at = located.partition("@")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    try:
        path = Path(snapshot_download(repo_id, revision=revision or at or None, allow_patterns=MODEL_FILES))
    except (HFValidationError, OSError, ValueError) as exc:  # offline misses and HTTP errors are OSErrors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EmopillarsError(f"model {ref!r} is neither a local folder nor a reachable Hub model: {first}") from None
    if not (path / "config.json").is_file():
        raise EmopillarsError(f"Hub model {ref!r} has no config.json")
    return path


def detect_kind(folder: Path) -> Kind:
    """A model folder (config.json + weights) or a synth run folder (dataset/)."""
    if (folder / "dataset" / "dataset_dict.json").is_file():
        return "dataset"
    if (folder / "config.json").is_file() and (any(folder.glob("*.safetensors")) or any(folder.glob("*.onnx"))):
        return "model"
    raise EmopillarsError(f"{folder} is neither a model folder (config.json + weights) nor a synth run (dataset/)")


def upload_operations(folder: Path, kind: Kind) -> list[CommitOperationAdd]:
    """The files a push uploads, as Hub commit operations.

    model: every file of the folder except training checkpoints. dataset: each split of `dataset/` as
    Parquet under `data/` (the layout `datasets.load_dataset(repo)` reads, features included), plus
    the run's card (`README.md`), plots (`*.png`) and `report.json`.
    """
    from huggingface_hub import CommitOperationAdd

    folder = Path(folder)
    if kind == "model":
        files = [
            p for p in sorted(folder.rglob("*")) if p.is_file() and "checkpoints" not in p.relative_to(folder).parts
        ]
        return [CommitOperationAdd(p.relative_to(folder).as_posix(), str(p)) for p in files]
    import datasets

    ops = []
    for split, part in datasets.load_from_disk(str(folder / "dataset")).items():
        buffer = io.BytesIO()
        part.to_parquet(buffer)
        ops.append(CommitOperationAdd(f"data/{split}-00000-of-00001.parquet", buffer.getvalue()))
    extras = [folder / "README.md", folder / "report.json", *sorted(folder.glob("*.png"))]
    ops += [CommitOperationAdd(p.name, str(p)) for p in extras if p.is_file()]
    return ops


def push(folder: str | Path, repo_id: str, private: bool = False, kind: Kind | None = None) -> str:
    """Create (or reuse) `repo_id` and upload `folder` in one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    kind = kind or detect_kind(folder)
    operations = upload_operations(folder, kind)
    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type=kind, private=private, exist_ok=True)
        info = api.create_commit(
            repo_id, operations, commit_message=f"emopillars: upload {folder.name}", repo_type=kind
        )
    except Exception as exc:  # auth, network, name: the hub's own message, on one line
        raise EmopillarsError(f"push of {folder} to {repo_id} failed: {str(exc).splitlines()[0]}") from None
    log.info("pushed %d files of %s to %s", len(operations), folder, info.commit_url)
    return info.commit_url
