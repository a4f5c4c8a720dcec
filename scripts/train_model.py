"""Rebuild detectors/model.tsv from the tuned corpus files under tests/corpus.

Run: ``.venv/bin/python scripts/train_model.py`` after changing the corpus or the
lexicons (the model reads lexicon groups); ``--check`` only reports whether the
shipped file is what this script would write.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from onplatform.detectors.evaluation import CorpusError
from onplatform.detectors.model import MODEL_PATH
from onplatform.detectors.training import build_model

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "tests" / "corpus")
    parser.add_argument("--output", type=Path, default=MODEL_PATH)
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        model, about = build_model(args.corpus)
    except (CorpusError, OSError) as err:
        print(f"train_model: {err}", file=sys.stderr)
        return 1
    written = model.dump(about)
    took = time.monotonic() - started
    if args.check:
        same = args.output.exists() and args.output.read_text(encoding="utf-8") == written
        print(f"{args.output}: {'up to date' if same else 'STALE: run scripts/train_model.py'}")
        return 0 if same else 1
    args.output.write_text(written, encoding="utf-8")
    print(
        f"{args.output}: {len(model)} features from {about['messages']} messages "
        f"in {took:.1f} s ({len(written) / 1e6:.2f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
