"""Shared, once-built lexicon and analyzers: loading every language takes a moment.

``analyzer`` runs the rules alone; ``shipped_analyzer`` blends in the model."""

from __future__ import annotations

import pytest

from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.lexicon import Lexicon, load_lexicon
from onplatform.detectors.model import load_model
from onplatform.detectors.registry import build, discover


@pytest.fixture(scope="session")
def lexicon() -> Lexicon:
    return load_lexicon()


@pytest.fixture(scope="session")
def analyzer(lexicon: Lexicon) -> Analyzer:
    return Analyzer(build(discover(lexicon, entry_points=[]), {}), lexicon)


@pytest.fixture(scope="session")
def shipped_analyzer(lexicon: Lexicon) -> Analyzer:
    """What a default config runs: the rules with the shipped model blended in."""
    return Analyzer(build(discover(lexicon, entry_points=[]), {}), lexicon, model=load_model())
