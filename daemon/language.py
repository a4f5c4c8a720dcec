"""The language of a client's words, to answer in it: the only importer of py3langid.

Most Upwork clients write English, so plainly English text is recognised by
its function words without the model; anything else goes to py3langid,
which works offline from a model shipped in its package, asked to choose
among the languages onplatform reads. The model (about 75 MB in memory) is
loaded only when first needed. Short or uncertain texts get the default.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

SUPPORTED = (
    "en",
    "es",
    "pt",
    "fr",
    "de",
    "it",
    "ru",
    "uk",
    "pl",
    "tr",
    "ar",
    "id",
    "zh",
    "tl",
    "hi",
)
MIN_CONFIDENCE = 0.8
MIN_LETTERS = 12
ENGLISH_SHARE = 0.2
"""Share of English function words from which ASCII text is taken as English."""

_WORD = re.compile(r"[a-z']+")
_ENGLISH = frozenset(
    {
        "the",
        "a",
        "an",
        "and",
        "or",
        "but",
        "to",
        "of",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "about",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "it",
        "this",
        "that",
        "these",
        "those",
        "my",
        "your",
        "our",
        "their",
        "me",
        "us",
        "them",
        "can",
        "could",
        "will",
        "would",
        "should",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "not",
        "no",
        "yes",
        "please",
        "thanks",
        "thank",
        "hi",
        "hello",
        "if",
        "so",
        "as",
        "just",
        "what",
        "when",
        "where",
        "how",
        "why",
        "which",
        "who",
        "there",
        "here",
    }
)


@lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED))
    return identifier


def plainly_english(words: str) -> bool:
    if not words.isascii():
        return False
    tokens = _WORD.findall(words.lower())
    return len(tokens) >= 3 and sum(t in _ENGLISH for t in tokens) / len(tokens) >= ENGLISH_SHARE


def detect_language(words: str, default: str = "en") -> str:
    """ISO 639-1 code of the words, or ``default`` when too short or unsure."""
    if sum(c.isalpha() for c in words) < MIN_LETTERS:
        return default
    if plainly_english(words):
        return "en"
    language, confidence = _identifier().classify(words[:2000])
    return str(language) if float(confidence) >= MIN_CONFIDENCE else default
