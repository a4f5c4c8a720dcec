"""Term groups and rules read from TOML data files.

A lexicon file (one per language) fills named groups of terms: ``pay_channel``,
``chat_channel``, ``outside``... Rules, kept in ``rules.toml``, combine groups
without naming a language, so a new language is a new lexicon file and
nothing else. Users add files through ``detectors.lexicon_paths`` and rules
through ``[[detectors.rules]]``.

A term is a regular expression over normalised text (lower case, accents
dropped from Latin letters). A leading or trailing ``*`` stands for the rest
of a word: ``integrat*`` matches "integration".
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, cast

import regex

from onplatform.detectors.base import CATEGORIES, Category
from onplatform.detectors.matcher import Hit, Scan, TermError, TermMatcher
from onplatform.detectors.matcher_cache import Loaded, cache_dir, load_matcher
from onplatform.detectors.normalize import normalize_term


class LexiconError(ValueError):
    """A lexicon or rule file is malformed; the message names the file and key."""


@dataclass(frozen=True)
class Rule:
    code: str
    category: Category
    score: float
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    window: int = 0
    """How many neighbouring sentences the groups may spread over."""
    max_words: int = 0
    """When set, the rule reads only messages of at most this many words: a bare
    "paypal?" is a request, the same word in a paragraph is not."""


@dataclass(frozen=True)
class ContextAdjustment:
    group: str
    delta: float
    reason: str
    window: int = 0
    """How many neighbouring sentences the group may sit in: a warning often
    names the channel in one sentence and says "that is not us" in the next."""
    categories: frozenset[str] = frozenset()
    """The categories whose findings it moves; all when empty. "The contract is
    active" excuses a work chat, never a payment outside or a scam."""
    lists: frozenset[str] = frozenset()
    """Categories whose findings inside a bulleted or numbered list read the whole list
    and the two lines of prose that open it: a feature list ("App features:" then "- pay by card or
    Pix", "- chat with the courier") describes one product, line by line."""

    def moves(
        self,
        category: str,
        sentences: tuple[int, int],
        scan: Scan,
        evidence: Sequence[Hit] = (),
    ) -> bool:
        """Whether this adjustment moves a finding of ``category`` over ``sentences``
        (first, last): its group is found within the window, outside any address or
        handle, and the category is one it names.

        A lowering context hit that lies wholly inside one of the finding's own
        ``evidence`` hits is part of the ask, not words around it: "form" in "payment in
        form of a bank check" or "stripe" in "I'll send you a Stripe invoice link" do not
        make the message a job spec. One that reaches past the evidence still counts
        ("telegram bot" around "telegram"), and so does a raising one ("私下" in "私下结",
        settle privately, is the ask saying where)."""
        if self.categories and category not in self.categories:
            return False
        low, high = sentences[0] - self.window, sentences[1] + self.window
        if category in self.lists:
            scope = scan.list_scope(*sentences)
            if scope is not None:
                low, high = min(low, scope[0]), max(high, scope[1])
        inside = evidence if self.delta < 0 else ()
        return any(
            low <= hit.sentence <= high
            and not scan.in_address(hit)
            and not any(e.start <= hit.start and hit.end <= e.end for e in inside)
            for hit in scan.get(self.group)
        )


class _LazyPatterns(Mapping[str, "regex.Pattern[str]"]):
    """One regular expression per group, compiled only when asked for (tools, not the scan)."""

    def __init__(self, terms: Mapping[str, Sequence[str]]) -> None:
        self._terms = terms
        self._compiled: dict[str, regex.Pattern[str]] = {}

    def __getitem__(self, name: str) -> regex.Pattern[str]:
        if name not in self._compiled:
            terms = self._terms[name]
            self._compiled[name] = compile_group(name, [(t, name) for t in terms])
        return self._compiled[name]

    def __contains__(self, name: object) -> bool:
        # Mapping's default would compile the group just to answer membership.
        return name in self._terms

    def __iter__(self) -> Iterator[str]:
        return iter(self._terms)

    def __len__(self) -> int:
        return len(self._terms)


@dataclass(frozen=True)
class Lexicon:
    groups: Mapping[str, regex.Pattern[str]]
    """One regex per group, compiled lazily; detection uses :attr:`matcher` instead."""
    rules: tuple[Rule, ...]
    context: tuple[ContextAdjustment, ...]
    languages: tuple[str, ...] = ()
    terms: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @cached_property
    def loaded(self) -> Loaded:
        """The matcher and where it came from (a cached build or a new one)."""
        return load_matcher(self.terms, cache_dir())

    @property
    def matcher(self) -> TermMatcher:
        """Every group's terms compiled for one-pass token matching."""
        return self.loaded.matcher


def _is_spaced_script(char: str) -> bool:
    """Scripts written without spaces get no word boundaries around terms."""
    code = ord(char)
    return not (
        0x2E80 <= code <= 0x9FFF
        or 0xAC00 <= code <= 0xD7AF
        or 0x0E00 <= code <= 0x0E7F
        or 0xF900 <= code <= 0xFAFF
        or 0x3040 <= code <= 0x30FF
    )


def fold_term(term: str) -> str:
    """A term folded like the text it is matched against (ASCII is kept as written)."""
    term = term.strip()
    if term.isascii():
        return term
    return "".join(c if c.isascii() else normalize_term(c) for c in term)


def compile_term(term: str) -> str:
    body = term.strip()
    prefix_free = body.startswith("*")
    suffix_free = body.endswith("*") and not body.endswith("\\*")
    body = body.strip("*")
    if not body.isascii():
        body = "".join(c if c.isascii() else normalize_term(c) for c in body)
    spaced = all(_is_spaced_script(c) for c in body)
    left = r"\w*" if prefix_free else (r"(?<!\w)" if spaced else "")
    right = r"\w*" if suffix_free else (r"(?!\w)" if spaced else "")
    body = body.replace(" ", r"\s+")
    return f"{left}(?:{body}){right}"


def compile_group(name: str, terms: Sequence[tuple[str, str]]) -> regex.Pattern[str]:
    """One pattern for a group; ``terms`` pairs each term with where it was read."""
    alternatives = []
    for term, where in terms:
        compiled = compile_term(term)
        try:
            regex.compile(compiled)
        except regex.error as err:
            raise LexiconError(f"{where}: bad pattern {term!r}: {err}") from err
        alternatives.append(compiled)
    # Longest first so that "bank transfer" wins over "bank".
    alternatives.sort(key=len, reverse=True)
    return regex.compile("|".join(alternatives) if alternatives else r"(?!x)x")


def _read_toml(path: Path | None, text: str | None, where: str) -> dict[str, Any]:
    try:
        if text is None:
            assert path is not None
            text = path.read_text(encoding="utf-8")
        return tomllib.loads(text)
    except OSError as err:
        raise LexiconError(f"{where}: cannot read: {err.strerror or err}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise LexiconError(f"{where}: invalid TOML: {err}") from err


def _terms_file(
    document: Mapping[str, Any], where: str, into: dict[str, list[tuple[str, str]]]
) -> str:
    for key in document:
        if key not in {"language", "groups"}:
            raise LexiconError(f"{where}: {key}: unknown key")
    groups = document.get("groups", {})
    if not isinstance(groups, dict):
        raise LexiconError(f"{where}: groups: expected a table")
    for name, terms in groups.items():
        if not isinstance(terms, list) or not all(isinstance(t, str) and t for t in terms):
            raise LexiconError(f"{where}: groups.{name}: expected an array of non-empty strings")
        into.setdefault(name, []).extend(
            (term, f"{where}: groups.{name}[{index}]") for index, term in enumerate(terms)
        )
    return str(document.get("language", ""))


def parse_rule(raw: Mapping[str, Any], where: str) -> Rule:
    allowed = {"code", "category", "score", "all", "any", "none", "window", "max_words"}
    for key in raw:
        if key not in allowed:
            raise LexiconError(f"{where}.{key}: unknown key")
    category = raw.get("category")
    if category not in CATEGORIES:
        raise LexiconError(f"{where}.category: must be one of {', '.join(CATEGORIES)}")
    code = raw.get("code")
    if not isinstance(code, str) or not code:
        raise LexiconError(f"{where}.code: required string")
    score = raw.get("score", 0.7)
    if not isinstance(score, int | float) or not 0 <= score <= 1:
        raise LexiconError(f"{where}.score: a number from 0 to 1")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("all", "any", "none"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise LexiconError(f"{where}.{key}: expected an array of group names")
        lists[key] = tuple(value)
    if not lists["all"] and not lists["any"]:
        raise LexiconError(f"{where}: a rule needs `all` or `any` groups")
    window = raw.get("window", 0)
    if not isinstance(window, int) or not 0 <= window <= 3:
        raise LexiconError(f"{where}.window: an integer from 0 to 3")
    max_words = raw.get("max_words", 0)
    if not isinstance(max_words, int) or isinstance(max_words, bool) or max_words < 0:
        raise LexiconError(f"{where}.max_words: a whole number of words (0: any length)")
    return Rule(
        code=code,
        category=cast(Category, category),
        score=float(score),
        all=lists["all"],
        any=lists["any"],
        none=lists["none"],
        window=window,
        max_words=max_words,
    )


def _builtin_files() -> list[tuple[str, str]]:
    folder = resources.files("onplatform.detectors").joinpath("lexicons")
    found = [
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    ]
    return sorted(found)


def _categories(listed: object, where: str) -> frozenset[str]:
    if not isinstance(listed, list):
        raise LexiconError(f'{where}: a list, such as ["contact_exchange"]')
    categories = frozenset(str(c) for c in listed)
    unknown = sorted(categories - set(CATEGORIES))
    if unknown:
        raise LexiconError(f"{where}: unknown {', '.join(unknown)}")
    return categories


def _parse_context(adj: Mapping[str, Any], where: str) -> ContextAdjustment:
    categories = _categories(adj.get("categories", []), f"{where}: categories")
    lists = _categories(adj.get("lists", []), f"{where}: lists")
    try:
        parsed = ContextAdjustment(
            str(adj["group"]),
            float(adj["delta"]),
            str(adj.get("reason", adj["group"])),
            int(adj.get("window", 0)),
            categories,
            lists,
        )
    except (KeyError, TypeError, ValueError) as err:
        raise LexiconError(f"{where}: needs group and delta") from err
    return parsed


def load_lexicon(
    extra_paths: Iterable[Path] = (),
    extra_rules: Iterable[Mapping[str, Any]] = (),
) -> Lexicon:
    """Read the built-in lexicons and rules, then the user's additions."""
    terms: dict[str, list[tuple[str, str]]] = {}
    rules: list[Rule] = []
    context: list[ContextAdjustment] = []
    languages: list[str] = []
    sources: list[tuple[str, dict[str, Any]]] = [
        (f"lexicons/{name}", _read_toml(None, text, f"lexicons/{name}"))
        for name, text in _builtin_files()
    ]
    sources += [(str(path), _read_toml(path, None, str(path))) for path in extra_paths]
    for where, document in sources:
        if "rules" in document or "context" in document:
            rules += [
                parse_rule(r, f"{where}: rules[{i}]")
                for i, r in enumerate(document.get("rules", []))
            ]
            context += [
                _parse_context(adj, f"{where}: context[{i}]")
                for i, adj in enumerate(document.get("context", []))
            ]
        terms_part = {k: v for k, v in document.items() if k not in {"rules", "context"}}
        language = _terms_file(terms_part, where, terms)
        if language:
            languages.append(language)
    rules += [parse_rule(r, f"detectors.rules[{i}]") for i, r in enumerate(extra_rules)]
    folded: dict[str, tuple[str, ...]] = {}
    origin: dict[str, str] = {}
    """Where each folded term was first written, to name it when it is refused."""
    for name, values in terms.items():
        kept: list[str] = []
        for term, where in values:
            folded_term = fold_term(term)
            origin.setdefault(folded_term, where)
            kept.append(folded_term)
        folded[name] = tuple(dict.fromkeys(kept))
    groups = _LazyPatterns(folded)
    for rule in rules:
        for name in (*rule.all, *rule.any, *rule.none):
            if name not in groups:
                raise LexiconError(f"rule {rule.code}: unknown group {name!r}")
    for adj in context:
        if adj.group not in groups:
            raise LexiconError(f"context: unknown group {adj.group!r}")
    lexicon = Lexicon(
        groups=groups,
        rules=tuple(rules),
        context=tuple(context),
        languages=tuple(languages),
        terms=folded,
    )
    try:
        _ = lexicon.matcher  # build it now: a bad lexicon fails at load, not on a message
    except TermError as err:
        raise LexiconError(f"{origin.get(err.term, 'lexicon')}: {err}") from err
    return lexicon
