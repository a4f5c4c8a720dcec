"""Configuration errors: name clashes, unknown detectors, malformed lexicon files."""

from __future__ import annotations

import gc
import tomllib
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from onplatform.detectors.lexicon import Lexicon, LexiconError, _builtin_files, load_lexicon
from onplatform.detectors.matcher import expand_term
from onplatform.detectors.matcher_cache import CACHE_ENV
from onplatform.detectors.registry import RegistryError, build, discover


class _EntryPoint:
    def __init__(self, name: str) -> None:
        self.name = name
        self.value = f"addon:{name}"

    def load(self) -> Any:
        return lambda options: None


def test_a_name_clash_is_an_error(lexicon: Lexicon) -> None:
    """An add-on may not replace a built-in detector."""
    with pytest.raises(RegistryError, match=r"'phrases'.*clashes"):
        discover(lexicon, entry_points=[_EntryPoint("phrases")])


def test_an_unknown_detector_table_is_an_error(lexicon: Lexicon) -> None:
    """A typo in the config names the table and the known detectors."""
    with pytest.raises(RegistryError, match=r"detectors\.phrasse: unknown detector"):
        build(discover(lexicon, entry_points=[]), {"phrasse": {}})


def test_a_disabled_detector_is_left_out(lexicon: Lexicon) -> None:
    detectors = build(discover(lexicon, entry_points=[]), {"contact_data": {"enabled": False}})
    assert [d.name for d in detectors] == ["phrases"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            'language = "xx"\n[groups]\npay_verb = ["pay(("]\n',
            r"extra\.toml: groups\.pay_verb\[0\]",
        ),
        ('language = "xx"\n[groups]\npay_verb = "pay"\n', r"extra\.toml: groups\.pay_verb"),
        ('language = "xx"\ncolour = 1\n', r"extra\.toml: colour: unknown key"),
        ("not toml [", r"extra\.toml: invalid TOML"),
        ('[[rules]]\ncode = "x"\ncategory = "scam"\nany = ["nope"]\n', "unknown group 'nope'"),
        (
            '[[rules]]\ncode = "x"\ncategory = "scam"\nany = ["pay_verb"]\nmax_words = "few"\n',
            r"extra\.toml: rules\[0\]\.max_words: a whole number",
        ),
        (
            '[[context]]\ngroup = "pay_verb"\ndelta = -0.2\ncategories = ["spam"]\n',
            r"extra\.toml: context\[0\]: categories: unknown spam",
        ),
        ('[[context]]\ngroup = "pay_verb"\n', r"extra\.toml: context\[0\]: needs group and delta"),
        (
            '[[context]]\ngroup = "pay_verb"\ndelta = -0.2\nlists = true\n',
            r"extra\.toml: context\[0\]: lists: a list",
        ),
        (
            '[[context]]\ngroup = "pay_verb"\ndelta = -0.2\nlists = ["spam"]\n',
            r"extra\.toml: context\[0\]: lists: unknown spam",
        ),
        (
            '[[context]]\ngroup = "pay_verb"\ndelta = -0.2\ncategories = "scam"\n',
            r"extra\.toml: context\[0\]: categories: a list",
        ),
    ],
)
def test_lexicon_error_names_the_file_and_key(tmp_path: Path, content: str, message: str) -> None:
    """A bad user lexicon fails at load with a one-line message naming file and key."""
    path = tmp_path / "extra.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LexiconError, match=message) as caught:
        load_lexicon([path])
    assert "\n" not in str(caught.value)


def test_a_user_lexicon_adds_terms(tmp_path: Path) -> None:
    """Terms from a user file are matched like the built-in ones."""
    path = tmp_path / "extra.toml"
    path.write_text('language = "xx"\n[groups]\nchat_channel = ["zorblat"]\n', encoding="utf-8")
    scan = load_lexicon([path]).matcher.scan("add me on zorblat")
    assert scan.has("chat_channel")


@pytest.mark.parametrize(
    ("term", "sequences"),
    [
        ("cash ?app", [("cashapp",), ("cash", "app")]),
        ("gift cards?", [("gift", "cards"), ("gift", "card")]),
        ("e-?mail", [("e", "mail"), ("email",)]),
        (
            "earn \\$?\\d+ a day",
            [("earn", "$", "\ue000", "a", "day"), ("earn", "\ue000", "a", "day")],
        ),
        ("pay*", [("pay*",)]),
        ("微信", [("微", "信")]),
    ],
)
def test_terms_expand_to_token_sequences(term: str, sequences: list[tuple[str, ...]]) -> None:
    """Plain terms become token sequences; nothing needs a regex."""
    assert sorted(expand_term(term)[0]) == sorted(sequences)


def test_lookbehind_becomes_a_refused_prefix() -> None:
    assert expand_term("(?<!not )directly") == ([("directly",)], [("not",)])


def test_a_real_regex_is_refused_by_the_expander() -> None:
    with pytest.raises(ValueError):
        expand_term("pay.+now")


def _traced_load() -> tuple[Lexicon, int, int, int]:
    """The lexicon, and the traced bytes at the load's peak, left after it, kept after gc.

    The cyclic collector is off during the load: when it runs depends on what the process
    did before, and with it on the figures moved by more than the margins between runs.
    Off, they are the worst case and the same every time.
    """
    tracemalloc.start()
    gc.disable()
    try:
        tracemalloc.reset_peak()
        lexicon = load_lexicon()
        left, peak = tracemalloc.get_traced_memory()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        gc.enable()
        tracemalloc.stop()
    return lexicon, peak, left, kept


def test_loading_every_lexicon_stays_small(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The daemon's memory budget (80 MB peak) holds with every language loaded, whether
    the matcher is built (a first start, a changed lexicon) or read from the cache.

    Terms written with alternatives expand to some 1.2 million word sequences (250,000
    when this test was written); kept as one node each, those 250,000 peaked above 100 MB.
    Shared endings keep the result to a few MB, sharing every ``SHARE_EVERY`` sequences
    bounds the unshared trie, and canonical nodes keyed by a hash keep a build's peak near
    36 MB with the collector off (33 MB with it on; 49 MB with a set of children per key);
    reading the cached build peaks near 21 MB. Little of a load may wait for the collector
    (4.6 MB of a build, 1.8 MB of a read): a reference cycle once kept 22 MB alive.

    The cache directory is this test's own: with the suite's shared one, whether this
    measured a build or a read depended on which test loaded the lexicon first.
    """
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    lexicon, peak, left, kept = _traced_load()
    assert lexicon.loaded.origin.startswith("built"), lexicon.loaded.origin
    assert lexicon.matcher.regex_terms < 60
    assert peak < 40 * 2**20, f"build peak {peak / 2**20:.1f} MB"
    assert kept < 15 * 2**20, f"kept {kept / 2**20:.1f} MB"
    assert left - kept < 6 * 2**20, f"{(left - kept) / 2**20:.1f} MB of a build freed only by gc"
    cached, peak, left, kept = _traced_load()
    assert cached.loaded.origin.startswith("cache"), cached.loaded.origin
    assert peak < 26 * 2**20, f"cached load peak {peak / 2**20:.1f} MB"
    assert left - kept < 2.5 * 2**20, f"{(left - kept) / 2**20:.1f} MB of a read freed only by gc"


def test_no_shipped_group_holds_a_term_twice() -> None:
    """A term written twice in one group is kept once by the loader, so the second copy
    only hides that someone meant to write another term (five such were found by reading,
    in session 10). Compared after the same whitespace folding the expander does."""
    repeated = []
    for name, text in _builtin_files():
        for group, terms in tomllib.loads(text).get("groups", {}).items():
            seen: set[str] = set()
            for term in terms:
                key = " ".join(term.split())
                if key in seen:
                    repeated.append(f"{name} [groups] {group}: {term!r}")
                seen.add(key)
    assert not repeated, "\n".join(repeated)
