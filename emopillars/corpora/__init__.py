"""Load narratives (bundled corpus, .txt folder, .jsonl, Hugging Face dataset) as bounded passages."""

from emopillars.corpora.loaders import bundled_corpus_path, load_passages
from emopillars.corpora.passages import normalise_whitespace, passage_id, split_passages

__all__ = ["bundled_corpus_path", "load_passages", "normalise_whitespace", "passage_id", "split_passages"]
