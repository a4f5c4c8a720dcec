"""Build ``model.tsv`` from the labelled corpus: which files, which features, which settings.

Every labelled single-message file is read except the blind ones (``*_blind.jsonl``),
which nothing is tuned or trained on: they are the measurement. The ``*_holdout.jsonl``
files are held out from the lexicons, not from the model: its settings were chosen with
a model that had not read the file they were chosen on, and the shipped model then
reads all it can (with 1,700 more messages, the blind round 14 went from F1 0.937 with
4.0 % false positives to 0.961 with 1.4 %).
"""

from __future__ import annotations

from pathlib import Path

from onplatform.detectors.contact_data import ContactDataDetector
from onplatform.detectors.evaluation import read_corpus
from onplatform.detectors.lexicon import Lexicon, load_lexicon
from onplatform.detectors.model import (
    IntentModel,
    TrainingSettings,
    features,
    model_groups,
    train,
)
from onplatform.detectors.normalize import normalize

BLIND_SUFFIX = "_blind.jsonl"
THREADS_PREFIX = "threads"


def training_files(corpus_dir: Path) -> list[Path]:
    """The single-message files but the blind ones, in name order (the order is part of
    the result)."""
    return sorted(
        path
        for path in corpus_dir.glob("*.jsonl")
        if not path.name.endswith(BLIND_SUFFIX) and not path.name.startswith(THREADS_PREFIX)
    )


def build_model(
    corpus_dir: Path,
    lexicon: Lexicon | None = None,
    settings: TrainingSettings | None = None,
) -> tuple[IntentModel, dict[str, object]]:
    """The model and a note of what it was trained on (kept in the file)."""
    settings = settings or TrainingSettings()
    lexicon = lexicon or load_lexicon([])
    matcher = lexicon.matcher
    files = training_files(corpus_dir)
    examples = []
    contacts = ContactDataDetector()
    for path in files:
        for record in read_corpus(path):
            text = normalize(record["text"])
            scan = matcher.scan(text.normalized)
            groups = model_groups(scan, contacts.detect(text))
            examples.append((features(scan.tokens, groups), record["label"]))
    model = train(examples, settings)
    about: dict[str, object] = {
        "files": [path.name for path in files],
        "messages": len(examples),
        "settings": {
            "epochs": settings.epochs,
            "rate": settings.rate,
            "l2": settings.l2,
            "seed": settings.seed,
            "runs": settings.runs,
            "prune": settings.prune,
        },
    }
    return model, about
