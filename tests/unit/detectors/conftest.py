"""Shared, once-built lexicon and analyzer: loading every language takes a moment."""

from __future__ import annotations

import pytest

from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.lexicon import Lexicon, load_lexicon
from onplatform.detectors.registry import build, discover


@pytest.fixture(scope="session")
def lexicon() -> Lexicon:
    return load_lexicon()


@pytest.fixture(scope="session")
def analyzer(lexicon: Lexicon) -> Analyzer:
    return Analyzer(build(discover(lexicon, entry_points=[]), {}), lexicon)
