"""The language of a client's words, to answer in it: the only importer of py3langid.

py3langid works offline from a model shipped in its package. It is asked to
choose among the languages onplatform reads, and short or uncertain texts
fall back to the configured default.
"""

from __future__ import annotations

from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

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


@lru_cache(maxsize=1)
def _identifier() -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED))
    return identifier


def detect_language(words: str, default: str = "en") -> str:
    """ISO 639-1 code of the words, or ``default`` when too short or unsure."""
    if sum(c.isalpha() for c in words) < MIN_LETTERS:
        return default
    language, confidence = _identifier().classify(words[:2000])
    return str(language) if float(confidence) >= MIN_CONFIDENCE else default
