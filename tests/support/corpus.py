"""The labelled corpus's single-message texts, for tests that run code over real wording."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def corpus_texts(every: int = 1) -> list[str]:
    """The text of every ``every``-th record of each single-message file (threads left
    out), file by file in name order."""
    return [
        json.loads(line)["text"]
        for path in sorted(CORPUS.glob("*.jsonl"))
        if not path.name.startswith("threads")
        for line in path.read_text(encoding="utf-8").splitlines()[::every]
        if line.strip()
    ]
