"""The fast paths of the normaliser and the matcher give what the plain definitions give.

Each shortcut (folding only the characters that change, one pass over token pairs,
spans counted from the nearer end...) is checked here against a slow reference on
random text mixing scripts, punctuation, symbols and white space.
"""

from __future__ import annotations

import itertools
import random
import sys
import time

import pytest

from onplatform.detectors import matcher as m
from onplatform.detectors import normalize as n
from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.lexicon import Lexicon
from tests.support.corpus import corpus_texts

PIECES = [
    *"abc xyz.,!?-'\n\t@$%_*",
    "\u2028", "\xa0", "é", "É", "ß", "ж", "Ж", "ё", "\u3000", "中", "文", "。", "’", "«", "İ",
    "ﬁ", "Ａ", "٤", "ً", "ع", "\u200b", "\x07", "\x01", "\r", "ア", "한", "€", "Σ", "ς", "😀",
    "K", "µ", "\xad", "¼", "ł", " pay ", " paypal ", " whatsapp ", " on ", " the ",
    " p4ypal ", " wh@tsapp ", " at ", " dot ", " com ", "one two three four five six ",
    " do ", "один", " два ", "три ", "дев'ять", "-", "p", "a",
    " please don't share your ", " nunca vamos te pedir que ", " bitte keine ", " nie poprosimy ",
    ". ", "\n\n", "! ", "… ", "？", "ѕкуре", "раураl",
]  # fmt: skip


def texts(count: int, seed: int = 7, size: int = 40) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, size))) for _ in range(count)]


def reference_fold(text: str) -> tuple[str, list[int]]:
    """The definition: each character folded on its own, with its original index."""
    pieces: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text):
        if char.isascii():
            folded = char.lower()
            if not (folded.isprintable() or folded in "\n\t"):
                continue
        else:
            folded = n._fold_char(char)
        pieces.append(folded)
        origins.extend([index] * len(folded))
    return "".join(pieces), origins


@pytest.mark.parametrize("text", texts(3000))
def test_fold_matches_the_per_character_definition(text: str) -> None:
    folded = n._fold(text)
    chars, origins = reference_fold(text)
    assert folded.chars == chars
    assert folded.offsets() == origins


def test_every_character_that_folding_changes_is_looked_at() -> None:
    for code in range(0x80, 0x3400):  # the scripts in use; the whole plane is built alike
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF:
            continue
        if n._fold_char(char) != char:
            assert n._CHANGING.match(char), hex(code)
    assert n._CHANGING.match("\x07") and n._CHANGING.match("😀")
    assert not n._CHANGING.match("ж") and not n._CHANGING.match("中")


def test_white_space_list_is_what_str_isspace_says() -> None:
    every = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert set(m._WHITE_SPACE) == every


@pytest.mark.parametrize("text", texts(2000, seed=11))
def test_split_and_blank_match_tokenize(text: str) -> None:
    marked = m._mark_sentences(text)
    assert m._split(marked) == m.tokenize(marked)
    assert m._blank(text) == text.translate(m._SPACE_TABLE)


@pytest.mark.parametrize("text", texts(3000, seed=13))
def test_prechecks_never_skip_a_rewrite(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each cheap precheck answers yes whenever its rewrite would change something."""
    folded = n._fold(text).chars
    if n._MIXED_HINT.search(folded) is not None:
        assert n._may_mix_scripts(folded)
    checked = n._Text(folded, None)
    n._number_words(checked)
    monkeypatch.setattr(n, "_may_hold_a_number_run", lambda chars: True)
    unchecked = n._Text(folded, None)
    n._number_words(unchecked)
    assert checked.chars == unchecked.chars


def reference_hits(scan: m.Scan) -> dict[str, list[m.Hit]]:
    """Every token looked up, every trie walked from every token: the slow way."""
    matcher = scan.matcher
    infos = [matcher._info(token) for token in scan.tokens]
    found: dict[str, list[m.Hit]] = {}
    for i, info in enumerate(infos):
        for root in info.roots:
            if root.groups or root.guarded:
                scan._record(found, root, i, i + 1)
            stack = [(root, i + 1)] if root.children else []
            while stack:
                node, j = stack.pop()
                if j >= len(infos):
                    continue
                for key in infos[j].keys:
                    child = node.children.get(key)
                    if child is None:
                        continue
                    if child.groups or child.guarded:
                        scan._record(found, child, i, j + 1)
                    if child.children:
                        stack.append((child, j + 1))
    return found


def normalized_texts(count: int, seed: int) -> list[str]:
    return [n.normalize(text).normalized for text in texts(count, seed=seed, size=80)]


@pytest.mark.parametrize("text", normalized_texts(400, seed=3))
def test_scan_finds_what_walking_every_token_finds(lexicon: Lexicon, text: str) -> None:
    scan = m.Scan(lexicon.matcher, text)
    assert scan.found == reference_hits(scan)


@pytest.mark.parametrize("text", normalized_texts(400, seed=5))
def test_token_spans_without_building_all(lexicon: Lexicon, text: str) -> None:
    scan = m.Scan(lexicon.matcher, text)
    expected = m.Scan(lexicon.matcher, text)._token_spans()
    for index in range(len(scan.tokens)):
        for end in (index + 1, min(index + 3, len(scan.tokens))):
            hit = m.Hit(index, end, 0)
            want = (expected[index][0], max(expected[index][0], expected[end - 1][1]))
            assert scan.char_span(hit) == want, (index, end)


@pytest.mark.parametrize(
    "text",
    [
        "a" * 19_999 + "@",
        ("a@" * 10_000),
        ("a\u200b@\u200b" * 5_000),
        "x" * 10_000 + " @ " + "y" * 9_000,
        "😀 " + "1" * 19_990,
        "·" + ("+@0" * 6_700)[:19_990] + " .x",
        "@" * 20_000,
        "\u200b" * 20_000,
        ("p.a.y.p.a.l " * 1_700),
        ("a a a a " * 2_500),
        ("1-2 3.4/5 " * 2_000),
        ("один два три " * 1_600),
        ("加微信 abc " * 2_500),
        (". \n" * 7_000),
    ],
    ids=lambda text: repr(text[:12]),
)
def test_adversarial_text_costs_milliseconds(analyzer: Analyzer, text: str) -> None:
    """Linear work on 20 KB built against each shortcut (a generous bound: shared CI)."""
    started = time.process_time()
    analyzer.assess(text)
    assert time.process_time() - started < 0.5


@pytest.mark.parametrize("text", normalized_texts(400, seed=9))
def test_sentence_at_agrees_with_the_token_spans(lexicon: Lexicon, text: str) -> None:
    scan = m.Scan(lexicon.matcher, text)
    reference = m.Scan(lexicon.matcher, text)
    for position in range(len(text)):
        assert scan.sentence_at(position) == reference._hit_at(position, position + 1).sentence
    quoted = m.Scan(lexicon.matcher, text)  # the sentences remembered from quoted evidence
    for hits in quoted.found.values():
        for hit in hits:
            start, _ = quoted.char_span(hit)
            want = reference._hit_at(start, start + 1).sentence
            assert quoted.sentence_at(start) == want


def list_texts(count: int, seed: int) -> list[str]:
    """Lines of random text, a third of them list items, some blank."""
    rng = random.Random(seed)
    bullets = ["- ", "* ", "• ", "1. ", "12) ", "  - ", "-", ""]
    lines = []
    for piece in texts(count * 6, seed=seed, size=12):
        lines.append(rng.choice(bullets) + piece if rng.random() < 0.4 else piece)
    return [
        n.normalize("\n".join(lines[i : i + rng.randint(2, 12)])).normalized
        for i in range(0, len(lines), 6)
    ]


def reference_list_blocks(scan: m.Scan) -> list[tuple[int, int, int]]:
    """Lists as runs of item lines, with ``sentence_at`` of each line's first and last word."""
    lines: list[tuple[bool, int, int]] = []  # (an item?, first sentence, last sentence)
    at = 0
    for line in scan.text.split("\n"):
        start, at = at, at + len(line) + 1
        words = [start + i for i, char in enumerate(line) if char.isalnum() and char != "_"]
        if words:
            item = m._LIST_ITEM.match(line) is not None
            lines.append((item, scan.sentence_at(words[0]), scan.sentence_at(words[-1])))
    runs = [(item, list(run)) for item, run in itertools.groupby(lines, key=lambda x: x[0])]
    return [
        ((runs[k - 1][1][-2:] if k else run)[0][1], run[0][1], run[-1][2])
        for k, (item, run) in enumerate(runs)
        if item and len(run) >= 2
    ]


@pytest.mark.parametrize("text", list_texts(300, seed=11))
def test_lists_are_found_in_one_pass_as_line_by_line(lexicon: Lexicon, text: str) -> None:
    scan = m.Scan(lexicon.matcher, text)
    reference = m.Scan(lexicon.matcher, text)
    assert scan._list_blocks() == reference_list_blocks(reference)


@pytest.mark.parametrize(
    ("pattern", "needles"),
    [
        ("(will|'ll) never (ask|request) you [^.,;!?]{0,200}", ("never",)),
        ("(benden|bizden) [^.;!?]{0,100}?(istemeyin)", ("benden", "bizden")),
        ("(please )?(don'?t|do not|never) (send|share) your", ("your",)),
        ("(please )?(don'?t|do not|never) (send|share) (it|x)", ("don", "not", "never")),
        ("(a|bb)? payp[a4]l", ("payp",)),
        ("abc*d", ()),  # "abd" matches: no word is sure
        ("(a|b) xx|yyy zzz", ()),  # alternatives at the top
        ("((ab|cd)e|never) zz", ()),  # an alternative without a word of three letters
        ("(u|you)\\s+(send|forward)\\s+\\$\\d+", ("send", "forward")),  # escapes are no words
        ("kod\\w*\\s+(gelecek|geldi)", ("kod",)),
    ],
)
def test_needles_are_words_every_match_holds(pattern: str, needles: tuple[str, ...]) -> None:
    assert m._needles(pattern) == needles


def test_every_regex_match_in_the_corpora_holds_a_needle(lexicon: Lexicon) -> None:
    """The literal prefilter never skips a term that would have matched."""
    texts = [n.normalize(text).normalized for text in corpus_texts()]
    checked = 0
    for terms in lexicon.matcher.regexes.values():
        for term in terms:
            for text in texts:
                for match in term.pattern.finditer(text):
                    checked += 1
                    if term.needles:
                        assert any(needle in match.group(0) for needle in term.needles)
    assert checked >= 40  # the regex terms do match the corpora (47 matches today)


@pytest.mark.parametrize("text", normalized_texts(300, seed=21))
def test_a_group_read_in_some_sentences_starts_where_the_whole_reading_does(
    lexicon: Lexicon, text: str
) -> None:
    """Regex terms read on a stretch of sentences find matches that start where reading the
    whole text finds them; one that only goes on into the next sentence is not read."""
    whole = m.Scan(lexicon.matcher, text)
    starts = {h.start for h in whole.get("negation")}
    last = whole.sentence(len(whole.tokens))
    for first in range(last + 1):
        part = m.Scan(lexicon.matcher, text)
        for hit in part.get_in_sentences("negation", first, first + 1):
            assert first <= hit.sentence <= first + 1
            assert hit.start in starts


def test_sharing_in_passes_reads_exactly_as_sharing_once(
    lexicon: Lexicon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subtrees shared every few sequences while loading (copied before a later term adds
    to them) give the matches of a trie shared once at the end, on every corpus text."""
    samples = [n.normalize(text).normalized for text in corpus_texts(every=7)]
    monkeypatch.setattr(m, "SHARE_EVERY", 10**9)
    once = m.TermMatcher(lexicon.terms)
    monkeypatch.setattr(m, "SHARE_EVERY", 500)
    in_passes = m.TermMatcher(lexicon.terms)
    assert samples
    for text in samples:
        assert once.scan(text).found == in_passes.scan(text).found, text
