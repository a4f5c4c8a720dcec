"""Fast lexicon matching: tokenise once, look terms up by token, not by regex.

Most lexicon terms are words or short phrases with a few alternatives
(``send (you )?(the )?money``). Each such term is expanded, once, into the
token sequences it stands for and stored in a trie keyed by token. A message
is then split into tokens once, every token is looked up in a bounded cache
(one dict lookup for a token seen before), then every pair of neighbouring
tokens (one more lookup: does a term end at the first or go on to the second?),
and only the few tokens where something happens walk the trie; a walk that
ends within three tokens is itself read from a cache keyed by those tokens. So
the cost per message does not grow with the number of terms or languages.
Terms that need a real regular expression (rare) are kept as regexes, checked
only when a rule asks for their group, and only when a literal they require
occurs in the text.

Term syntax (over normalised text): words separated by spaces; ``(a|b)``
alternatives, ``?`` after a character or a group, ``[xy]`` character choices,
``\\d+`` for a number, ``\\$`` for a literal symbol, leading ``(?<!word )``
to refuse a preceding word; ``word*`` is a word stem, ``*word`` a word ending,
``*word*`` a word part. Anything else is a regular expression.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, count, islice, repeat
from operator import add, methodcaller
from typing import NamedTuple

import regex

DIGITS = "\ue000"
"""The key a token made only of digits carries (a term's ``\\d+``)."""

_MAX_EXPANSIONS = 5000
_CACHE_LIMIT = 200_000

_CJK_RANGES = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK = re.compile(f"[{_CJK_RANGES}]")


def is_cjk(char: str) -> bool:
    """Whether a character is Chinese or Japanese: a script written without spaces."""
    return _CJK.match(char) is not None


_SYMBOLS = "$€£¥₹₽₺%"
_PUNCT_CHARS = (
    "!\"#&'()+,./:;<=>?@[\\]^`{|}~-_*"
    "‘’‚‛“”„‟«»‹›–—―‐‑‒…·•¡¿،؛؟。、，！？：；（）【】《》「」『』〈〉"
)
_TEXT_TABLE: dict[int, str] = {ord(c): " " for c in _PUNCT_CHARS}
"""One character for one: str.translate then takes its fast path on ASCII text."""
_SPAN = methodcaller("span")
_TERM_TABLE = {k: v for k, v in _TEXT_TABLE.items() if k != ord("*")}
_TOKEN_AT = re.compile(
    f"[{re.escape(_SYMBOLS)}]|[{_CJK_RANGES}]"
    f"|[^\\s{re.escape(_PUNCT_CHARS + _SYMBOLS)}{_CJK_RANGES}]+"
)


_WHITE_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""Every character ``str.isspace`` (and so ``str.split`` and ``\\s``) counts as white space."""
_SPACE_TABLE = {
    **_TEXT_TABLE,
    **{ord(c): " " for c in _WHITE_SPACE},
}
"""Punctuation and every kind of white space to a plain space, one character for one."""


def _space_cjk(text: str) -> str:
    return _CJK.sub(r" \g<0> ", text)


_PUNCT = re.compile(f"[{re.escape(_PUNCT_CHARS)}]")
_WHITE = re.compile(f"[{_WHITE_SPACE.replace(' ', '')}{re.escape(_PUNCT_CHARS)}]")
"""What :func:`_blank` replaces in non-ASCII text: not the plain space, which would be
replaced by itself (a third of the text: the regex ran three times slower)."""
_CJK_TOKEN = re.compile(f"[{_CJK_RANGES}]|[^\\s{_CJK_RANGES}]+")


def _split(text: str) -> list[str]:
    """The tokens of ``text`` (sentence markers included): :func:`tokenize`, faster.

    ``str.translate`` is quick on ASCII text only; elsewhere one regex pass blanks
    the punctuation, and CJK characters are read one by one by a regex.
    """
    if text.isascii():
        return _space_symbols(text.translate(_TEXT_TABLE)).split()
    blanked = _space_symbols(_PUNCT.sub(" ", text))
    if _CJK.search(blanked) is None:
        return blanked.split()
    return _CJK_TOKEN.findall(blanked)


def _blank(text: str) -> str:
    """Punctuation and every white space to a plain space, one character for one."""
    return text.translate(_SPACE_TABLE) if text.isascii() else _WHITE.sub(" ", text)


def _space_symbols(text: str) -> str:
    """Currency and percent signs stand alone: "$100" is "$" and "100"."""
    for symbol in _SYMBOLS:
        if symbol in text:
            text = text.replace(symbol, f" {symbol} ")
    return text


def tokenize(text: str) -> list[str]:
    """Split normalised text into word tokens; symbols and CJK characters stand alone."""
    if not text.isascii() and _CJK.search(text):
        text = _space_cjk(text)
    return _space_symbols(text.translate(_TEXT_TABLE)).split()


def token_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Character spans of the tokens of ``text[start:end]``, as :func:`tokenize` finds them."""
    return [m.span() for m in _TOKEN_AT.finditer(text, start, len(text) if end is None else end)]


# --- term expansion -------------------------------------------------------------------------


class TermError(ValueError):
    """A term that is neither words nor a valid regular expression."""

    def __init__(self, term: str, reason: str) -> None:
        super().__init__(f"bad pattern {term!r}: {reason}")
        self.term = term


class _UnsupportedError(Exception):
    """The term needs a real regular expression."""


def _parse_alternatives(term: str, pos: int, closing: str | None) -> tuple[list[str], int]:
    """Expand ``term`` from ``pos`` up to ``closing``; returns the strings and the end."""
    branches: list[str] = []
    current: list[str] = [""]
    while pos < len(term):
        char = term[pos]
        if closing is not None and char == closing:
            branches.extend(current)
            return branches, pos + 1
        if char == "|":
            branches.extend(current)
            current = [""]
            pos += 1
            continue
        if char == "(":
            if term.startswith("(?:", pos):
                pos += 2
            elif term.startswith("(?", pos):
                raise _UnsupportedError
            options, pos = _parse_alternatives(term, pos + 1, ")")
        elif char == "[":
            close = term.find("]", pos + 1)
            body = term[pos + 1 : close] if close > 0 else ""
            if not body or any(c in body for c in "^\\") or "-" in body.strip("-"):
                raise _UnsupportedError
            options, pos = [_term_char(c) for c in dict.fromkeys(body)], close + 1
        elif char == "\\":
            if term.startswith("\\d+", pos):
                options, pos = [f" {DIGITS} "], pos + 3
            elif pos + 1 < len(term) and not term[pos + 1].isalnum():
                options, pos = [_term_char(term[pos + 1])], pos + 2
            else:
                raise _UnsupportedError
        elif char in ".+{}^$)]":
            raise _UnsupportedError
        else:
            options, pos = [_term_char(char)], pos + 1
        if pos < len(term) and term[pos] == "?":
            options = [*options, ""]
            pos += 1
        if pos < len(term) and term[pos] in "+{":
            raise _UnsupportedError
        current = [head + option for head in current for option in options]
        if len(current) > _MAX_EXPANSIONS:
            raise _UnsupportedError
    if closing is not None:
        raise _UnsupportedError
    branches.extend(current)
    return branches, pos


def _term_char(char: str) -> str:
    """A character of a term as the text tokeniser reads it: punctuation is a space, a
    symbol or a CJK character a token of its own (done per character, so that the tens
    of thousands of strings an alternation expands to are only split)."""
    read = _TERM_CHARS.get(char)
    if read is None:
        alone = _CJK.match(char) is not None or char in _SYMBOLS
        read = _TERM_CHARS[char] = f" {char} " if alone else char.translate(_TERM_TABLE)
    return read


_TERM_CHARS: dict[str, str] = {}


_LOOKBEHIND = re.compile(r"\(\?<!([^()|\\?*+\[\]]+)\)")


def expand_term(term: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """Token sequences a term stands for, and the token sequences it must not follow.

    Raises ``ValueError`` when the term needs a regular expression.
    """
    sequences, refused = _expand_term(term)
    return list(sequences), list(refused)


def _expand_term(term: str) -> tuple[tuple[tuple[str, ...], ...], tuple[tuple[str, ...], ...]]:
    """:func:`expand_term`, as tuples. Not remembered: a term is expanded once, when it is
    added, and the expansions of a whole lexicon (100,000 word sequences) would outweigh
    the matcher itself."""
    body = term.strip()
    refused: list[tuple[str, ...]] = []
    while True:
        found = _LOOKBEHIND.match(body)
        if found is None:
            break
        refused.append(tuple(found.group(1).translate(_TERM_TABLE).split()))
        body = body[found.end() :]
    try:
        strings, _ = _parse_alternatives(body, 0, None)
    except _UnsupportedError as err:
        raise ValueError(term) from err
    sequences: list[tuple[str, ...]] = []
    for string in strings:
        tokens = tuple(string.split())  # each character was spaced as it was read
        if not tokens:
            continue
        if "*" in string and any(t.strip("*") == "" or "*" in t.strip("*") for t in tokens):
            raise ValueError(term)
        sequences.append(tokens)
    if not sequences:
        raise ValueError(term)
    return tuple(dict.fromkeys(sequences)), tuple(refused)


# --- the trie -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node]
    """Shared and empty (:data:`_NO_CHILDREN`) until a term goes on from here."""
    groups: tuple[str, ...] = ()
    """Groups whose term ends here with no condition on the preceding words."""
    guarded: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = ()
    """Groups whose term ends here unless one of the given token sequences precedes it."""


_NO_CHILDREN: dict[str, _Node] = {}
"""The children of every leaf: a leaf is one small object, however many there are."""


class _SubtreeSharing:
    """Keeps every set of identical subtrees of the trie once, pass after pass.

    Terms written with alternatives ("(save|avoid|skip) (the )?(fees|cut)") expand
    to thousands of word sequences that end alike; once shared, the trie is a graph
    whose equal endings are one node (145,000 nodes became a few thousand). Matching
    only follows children, so it reads exactly as before. The build shares every
    ``SHARE_EVERY`` sequences rather than once at the end, which bounds how large the
    unshared trie grows while loading; a shared node is copied before a later term
    adds to it (:meth:`unshared`).
    """

    def __init__(self) -> None:
        self._canonical: dict[tuple[object, ...], list[_Node]] = {}
        """Canonical nodes by a hash of their children and their ends. The key holds the
        hash, not the children: a set of (token, child) pairs per node cost 8 MB at peak."""
        self._shared: set[int] = set()
        """Ids of the canonical nodes: each is kept alive by ``_canonical``."""

    def unshared(self, node: _Node) -> _Node:
        """``node``, or a copy of it that a new term may change without touching others."""
        if id(node) not in self._shared:
            return node
        return _Node(dict(node.children), node.groups, node.guarded)

    def share(self, roots: dict[str, _Node]) -> dict[str, _Node]:
        canonical, shared = self._canonical, self._shared
        done: dict[int, _Node] = {}

        def share(node: _Node) -> _Node:
            if node.children is _NO_CHILDREN or id(node) in shared:
                return node  # leaves are shared by their ending as they are made
            found = done.get(id(node))
            if found is not None:
                return found
            children = {token: share(child) for token, child in node.children.items()}
            pairs = frozenset(zip(children, map(id, children.values()), strict=True))
            key = (hash(pairs), node.groups, node.guarded)
            alike = canonical.setdefault(key, [])
            kept = next((n for n in alike if _same_children(n.children, children)), None)
            if kept is None:
                node.children = children
                kept = node
                alike.append(node)
                shared.add(id(node))
            done[id(node)] = kept
            return kept

        shared_roots = {token: share(node) for token, node in roots.items()}
        # ``share`` refers to itself through its closure: a cycle that would keep ``done``
        # and, after the last pass, all of ``canonical`` until a full garbage collection.
        # Cutting it frees them at once.
        share = None  # type: ignore[assignment]
        return shared_roots


def _same_children(one: dict[str, _Node], other: dict[str, _Node]) -> bool:
    """The same tokens leading to the very same nodes (``==`` would compare subtrees)."""
    return len(one) == len(other) and all(other.get(token) is node for token, node in one.items())


SHARE_EVERY = 20_000
"""Word sequences added between two sharing passes while the lexicons load."""


class _TokenInfo:
    """What one token matches: its trie keys (in a fixed order) and the terms it starts.

    One object per distinct key set, compared by identity: a pair of them is a cheap
    dict key.
    """

    __slots__ = ("ends", "keys", "roots", "starts")

    def __init__(self, keys: tuple[str, ...], roots: tuple[_Node, ...]) -> None:
        self.keys = keys
        self.roots = roots
        self.ends = any(root.groups or root.guarded for root in roots)
        """A one-token term ends at this token."""
        self.starts = any(root.children for root in roots)
        """A longer term may start at this token."""

    def leads_to(self, following: _TokenInfo) -> bool:
        """Whether a term goes on from this token to the following one."""
        return any(key in root.children for root in self.roots for key in following.keys)


_NO_INFO = _TokenInfo((), ())


@dataclass(frozen=True)
class RegexTerm:
    group: str
    pattern: regex.Pattern[str]
    needles: tuple[str, ...]
    """Literal words the term needs; the pattern runs only when one is present."""


class Hit(NamedTuple):
    """Where one group matched: token indexes (``end`` excluded) and the sentence."""

    start: int
    end: int
    sentence: int


_NEEDLE = re.compile(r"[^\W\d_]{3,}")


_ESCAPE = re.compile(r"\\.(?:\{[^}]*\}|[*+?])?\??")


def _needles(pattern: str) -> tuple[str, ...]:
    """Literal words of which every match of ``pattern`` holds at least one.

    A word outside every group is required (the longest is kept); failing that, the
    first group that must match and has a word in each alternative gives one word per
    alternative ("(please )?(don't|do not|never) ..." gives "don", "not", "never").
    Anything harder gives none, and the pattern runs whenever its group is asked for.
    """
    # An escape ("\\s+", "\\w*", "\\$") stands for no letter of a word: a blank splits the
    # words around it, and each piece is still in every match.
    pieces = _top_level(_NOT_LITERAL.sub(" ", _ESCAPE.sub(" ", pattern)))
    if pieces is None:
        return ()
    words = _NEEDLE.findall(" ".join(text for text, group in pieces if not group))
    if words:
        return (max(words, key=len),)
    for text, group in pieces:
        if group != "(":
            continue
        needles: list[str] = []
        for alternative in _split_alternatives(text):
            found = _needles(alternative)
            if not found:
                break  # this group has a short alternative ("u"): try the next one
            needles += found
        else:
            return tuple(dict.fromkeys(needles))
    return ()


def _top_level(pattern: str) -> list[tuple[str, str]] | None:
    """The pattern as literal runs ``(text, "")`` and groups: ``(inside, "(")`` when the
    group must match, ``(inside, "?")`` when it may be skipped. ``None`` when the pattern
    has alternatives at the top or unbalanced brackets."""
    pieces: list[tuple[str, str]] = []
    literal: list[str] = []
    at = 0
    while at < len(pattern):
        char = pattern[at]
        if char == "|":
            return None
        if char != "(":
            literal.append(char)
            at += 1
            continue
        depth, close = 0, at
        while close < len(pattern):
            depth += {"(": 1, ")": -1}.get(pattern[close], 0)
            if depth == 0:
                break
            close += 1
        if depth:
            return None
        pieces.append(("".join(literal), ""))
        literal = []
        optional = close + 1 < len(pattern) and pattern[close + 1] in "?*{"
        pieces.append((pattern[at + 1 : close], "?" if optional else "("))
        at = (
            close + 2
            if optional or (close + 1 < len(pattern) and pattern[close + 1] == "+")
            else close + 1
        )
    pieces.append(("".join(literal), ""))
    return pieces


def _split_alternatives(inside: str) -> list[str]:
    """The alternatives of a group's inside, split at the ``|`` not nested deeper."""
    parts, depth, start = [], 0, 0
    for at, char in enumerate(inside):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(inside[start:at])
            start = at + 1
    parts.append(inside[start:])
    return parts


_NOT_LITERAL = re.compile(
    r"\(\?<?[!=][^)]*\)"  # lookarounds
    r"|\[[^\]]*\](?:\{[^}]*\}|[*+?])?\??"  # character classes, repeated or not
    r"|[^)](?:\{[^}]*\}|[*+?])\??"  # a repeated or optional character (groups: above)
)
"""What a pattern may match without these very characters: blanked before looking for words."""


_Guarded = tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]
TrieState = tuple[
    tuple[tuple[tuple[str, ...], tuple[int, ...], tuple[str, ...], _Guarded], ...],
    tuple[tuple[str, int], ...],
    tuple[str, ...],
    tuple[tuple[int, tuple[str, ...]], ...],
    tuple[tuple[int, tuple[str, ...]], ...],
    tuple[str, ...],
    tuple[tuple[str, str], ...],
]
"""A built matcher as plain tuples, strings and numbers (see :meth:`TermMatcher.state`):
what a cache file keeps, and what ``marshal`` writes without running any code."""


class TermMatcher:
    """Every group's terms compiled once; :meth:`scan` reads a text in one pass.

    Building expands every term into its word sequences: a second or more per thousand
    terms. ``state`` gives what was built, so that a process can start from a copy of
    it instead (:mod:`onplatform.detectors.matcher_cache`).
    """

    def __init__(self, terms: Mapping[str, Sequence[str]], state: TrieState | None = None) -> None:
        self.names: tuple[str, ...] = tuple(terms)
        self.index = {name: i for i, name in enumerate(self.names)}
        self._root: dict[str, _Node] = {}
        self._exact: set[str] = set()
        self._stems: dict[int, set[str]] = {}
        self._endings: dict[int, set[str]] = {}
        self._parts: list[str] = []
        self.regexes: dict[str, list[RegexTerm]] = {}
        self._regex_sources: list[tuple[str, str]] = []
        if state is None:
            self._build(terms)
        else:
            self._restore(state)
        self._stem_lengths = sorted(self._stems)
        self._ending_lengths = sorted(self._endings)
        self._infos: dict[tuple[str, ...], _TokenInfo] = {}
        self._cache = _InfoCache(self._info)
        self._pairs = _PairCache()
        self._walks = _WalkCache()
        self._last: tuple[str, Scan] | None = None

    def _build(self, terms: Mapping[str, Sequence[str]]) -> None:
        self._registered: dict[str, str] = {}
        self._leaves: dict[tuple[object, ...], _Node] = {}
        self._sharing: _SubtreeSharing | None = _SubtreeSharing()
        self._unshared_sequences = 0
        for name, group_terms in terms.items():
            for term in group_terms:
                self._add(name, term)
                if self._unshared_sequences >= SHARE_EVERY:
                    self._root = self._sharing.share(self._root)
                    self._unshared_sequences = 0
        self._root = self._sharing.share(self._root)
        self._sharing = None
        self._leaves.clear()
        self._registered.clear()

    def state(self) -> TrieState:
        """The built trie as plain data: each node once (the trie is a graph whose equal
        endings are shared), children as indexes into the node list."""
        order: dict[int, int] = {}
        nodes: list[_Node] = []
        pending = list(reversed(self._root.values()))
        while pending:
            node = pending.pop()
            if id(node) in order:
                continue
            order[id(node)] = len(nodes)
            nodes.append(node)
            pending.extend(reversed(node.children.values()))
        return (
            tuple(
                (
                    tuple(node.children),
                    tuple(order[id(child)] for child in node.children.values()),
                    node.groups,
                    node.guarded,
                )
                for node in nodes
            ),
            tuple((token, order[id(node)]) for token, node in self._root.items()),
            tuple(sorted(self._exact)),
            tuple((size, tuple(sorted(words))) for size, words in sorted(self._stems.items())),
            tuple((size, tuple(sorted(words))) for size, words in sorted(self._endings.items())),
            tuple(self._parts),
            tuple(self._regex_sources),
        )

    def _restore(self, state: TrieState) -> None:
        """The trie ``state`` describes; ``ValueError`` when it is not one."""
        try:
            nodes_data, roots, exact, stems, endings, parts, regex_sources = state
            nodes = [
                _Node({} if tokens else _NO_CHILDREN, tuple(groups), tuple(guarded))
                for tokens, _, groups, guarded in nodes_data
            ]
            for node, (tokens, children, _, _) in zip(nodes, nodes_data, strict=True):
                if len(tokens) != len(children):
                    raise ValueError("a node's tokens and children differ in number")
                node.children.update(zip(tokens, map(nodes.__getitem__, children), strict=True))
            self._root = {token: nodes[at] for token, at in roots}
            self._exact = set(exact)
            self._stems = {size: set(words) for size, words in stems}
            self._endings = {size: set(words) for size, words in endings}
            self._parts = list(parts)
        except (TypeError, ValueError, IndexError, KeyError) as err:
            raise ValueError(f"not a matcher state: {err}") from err
        for group, term in regex_sources:
            self._add_regex(group, term)

    def _add(self, group: str, term: str) -> None:
        assert self._sharing is not None  # only called while building
        try:
            sequences, refused = _expand_term(term)
        except ValueError:
            self._add_regex(group, term)
            return
        registered = self._registered
        unshared = self._sharing.unshared
        self._unshared_sequences += len(sequences)
        previous: tuple[str, ...] = ()
        inner: list[_Node] = []
        # An expansion lists sequences with the same beginning side by side: each one is
        # walked on from where it leaves the previous one. The inner nodes on the way are
        # never replaced, so those of the previous sequence are still in the trie.
        for tokens in sequences:
            last = len(tokens) - 1
            start = 0
            limit = min(len(previous) - 1, last)
            while start < limit and previous[start] == tokens[start]:
                start += 1
            del inner[start:]
            children = inner[-1].children if inner else self._root
            for index in range(start, last + 1):
                word = tokens[index]
                token = registered.get(word)
                if token is None:  # one string per distinct token, however many terms hold it
                    token = registered[word] = word
                    self._register(token)
                child = children.get(token)
                if child is not None:
                    child = children[token] = unshared(child)
                if index == last:
                    children[token] = self._with_end(child, group, refused)
                    break
                if child is None or child.children is _NO_CHILDREN:
                    # A word goes on from here: the node needs children of its own.
                    child = children[token] = _Node(
                        {},
                        child.groups if child is not None else (),
                        child.guarded if child is not None else (),
                    )
                inner.append(child)
                children = child.children
            previous = tokens

    def _with_end(
        self, node: _Node | None, group: str, refused: tuple[tuple[str, ...], ...]
    ) -> _Node:
        """``node`` (or a new leaf) with ``group`` ending there.

        Leaves are shared between all terms that end alike: most of a lexicon's word
        sequences end in a leaf, and one object per ending kind keeps loading small.
        """
        groups = node.groups if node is not None else ()
        guarded = node.guarded if node is not None else ()
        if refused:
            guarded = (*guarded, (group, refused))
        elif group not in groups:
            groups = (*groups, group)
        if node is not None and node.children is not _NO_CHILDREN:
            node.groups, node.guarded = groups, guarded  # an inner node is never shared
            return node
        key = (groups, guarded)
        leaf = self._leaves.get(key)
        if leaf is None:
            leaf = self._leaves[key] = _Node(_NO_CHILDREN, groups, guarded)
        return leaf

    def _register(self, token: str) -> None:
        if token == DIGITS:
            return
        if token.startswith("*") and token.endswith("*") and len(token) > 2:
            if token[1:-1] not in self._parts:
                self._parts.append(token[1:-1])
        elif token.endswith("*"):
            self._stems.setdefault(len(token) - 1, set()).add(token[:-1])
        elif token.startswith("*"):
            self._endings.setdefault(len(token) - 1, set()).add(token[1:])
        else:
            self._exact.add(token)

    def _add_regex(self, group: str, term: str) -> None:
        from onplatform.detectors.lexicon import compile_term  # the regex syntax lives there

        try:
            pattern = regex.compile(compile_term(term))
        except regex.error as err:
            raise TermError(term, str(err)) from err
        self.regexes.setdefault(group, []).append(RegexTerm(group, pattern, _needles(term)))
        self._regex_sources.append((group, term))

    @property
    def regex_terms(self) -> int:
        return sum(len(v) for v in self.regexes.values())

    def _info(self, token: str) -> _TokenInfo:
        keys: list[str] = []
        if token in self._exact:
            keys.append(token)
        size = len(token)
        for length in self._stem_lengths:
            if length > size:
                break
            if token[:length] in self._stems[length]:
                keys.append(token[:length] + "*")
        for length in self._ending_lengths:
            if length > size:
                break
            if token[-length:] in self._endings[length]:
                keys.append("*" + token[-length:])
        for part in self._parts:
            if part in token:
                keys.append(f"*{part}*")
        if token.isdecimal():
            keys.append(DIGITS)
        if not keys:
            return _NO_INFO
        key = tuple(keys)
        info = self._infos.get(key)
        if info is None:
            roots = tuple(self._root[k] for k in key if k in self._root)
            info = self._infos[key] = _TokenInfo(key, roots)
        return info

    def scan(self, text: str) -> Scan:
        """All token-matched groups of ``text``; regex-only terms are read on demand."""
        last = self._last
        if last is not None and last[0] is text:
            return last[1]
        result = Scan(self, text)
        self._last = (text, result)
        return result

    def infos(self, tokens: list[str]) -> list[_TokenInfo]:
        cache = self._cache
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        return list(map(cache.__getitem__, tokens))

    def links(self, infos: list[_TokenInfo]) -> list[bool]:
        """For each token but the last, whether a term ends at it or goes on to the next."""
        pairs = self._pairs
        if len(pairs) > _CACHE_LIMIT:
            pairs.clear()
        if len(self._walks) > _CACHE_LIMIT:
            self._walks.clear()
        return list(map(pairs.__getitem__, zip(infos, islice(infos, 1, None), strict=False)))


def _walk(infos: Sequence[_TokenInfo], i: int, limit: int) -> list[tuple[_Node, int]] | None:
    """The nodes of the terms that start at ``infos[i]``, with their length in tokens.

    Read no further than ``infos[limit - 1]``; ``None`` when a term may go on past it.
    """
    ends: list[tuple[_Node, int]] = []
    for root in infos[i].roots:
        if root.groups or root.guarded:
            ends.append((root, 1))
        if not root.children:
            continue
        stack = [(root, i + 1)]
        while stack:
            node, j = stack.pop()
            if j >= limit:
                return None
            for key in infos[j].keys:
                child = node.children.get(key)
                if child is None:
                    continue
                if child.groups or child.guarded:
                    ends.append((child, j + 1 - i))
                if child.children:
                    stack.append((child, j + 1))
    return ends


_Triple = tuple[_TokenInfo, _TokenInfo, _TokenInfo]
_Ends = tuple[tuple[_Node, int], ...]


class _WalkCache(dict[_Triple, "_Ends | None"]):
    """Three neighbouring tokens -> the terms starting at the first, when none is longer."""

    def __missing__(self, triple: _Triple) -> _Ends | None:
        ends = _walk(triple, 0, 3)
        walk = self[triple] = None if ends is None else tuple(ends)
        return walk


class _InfoCache(dict[str, _TokenInfo]):
    """Token -> what it matches; computed on first sight, then one dict lookup."""

    def __init__(self, compute: Callable[[str], _TokenInfo]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, token: str) -> _TokenInfo:
        info = self[token] = self.compute(token)
        return info


class _PairCache(dict[tuple[_TokenInfo, _TokenInfo], bool]):
    """Two neighbouring tokens -> whether a term ends at the first or goes on to the second."""

    def __missing__(self, pair: tuple[_TokenInfo, _TokenInfo]) -> bool:
        first, following = pair
        linked = self[pair] = first.ends or (first.starts and first.leads_to(following))
        return linked


class Scan:
    """The groups found in one text; ``get`` adds regex-only terms lazily.

    Tokens are read once, with a marker token at each sentence end, so a
    token's sentence is the number of markers before it.
    """

    def __init__(self, matcher: TermMatcher, text: str) -> None:
        self.matcher = matcher
        self.text = text
        marked = _mark_sentences(text)
        tokens = _split(marked)
        self.tokens = tokens
        marks, mark_tokens = _sentence_marks(tokens) if _MARK in marked else ([], [])
        self._marks = marks
        """Sentence ends, for numbering sentences: a run of markers counts once."""
        self._mark_tokens = mark_tokens
        """Every marker token, for telling words from markers."""
        self._spans: list[tuple[int, int]] | None = None
        self._span_edges: tuple[list[int], list[int]] | None = None
        self._words_before_marks: list[int] | None = None
        self._known_sentences: dict[int, int] = {}
        """Sentence of the first character of each evidence span quoted so far."""
        self._spans_asked = 0
        self._word_starts: list[int] | None = None
        self._agreed: bool | None = None
        self._words: list[tuple[int, int]] | None = None
        self._spaced: str | None = None
        self._spaced_done = False
        self._symbols: tuple[str, ...] = ()
        self._found_spans: dict[int, tuple[int, int]] = {}
        self._sentence_hits: dict[tuple[str, int, int], list[Hit]] = {}
        self._addresses: list[tuple[int, int]] | None = None
        self._lists: list[tuple[int, int, int]] | None = None
        found: dict[str, list[Hit]] = {}
        infos = matcher.infos(tokens)
        infos.append(_NO_INFO)  # past the end: nothing; the walks may look two tokens on
        candidates = list(compress(count(), matcher.links(infos)))
        if candidates:
            infos.append(_NO_INFO)
            walks = matcher._walks
            for i in candidates:
                walk = walks[infos[i], infos[i + 1], infos[i + 2]]
                if walk is None:
                    self._walk(found, infos, i)
                    continue
                for node, length in walk:
                    self._record(found, node, i, i + length)
        self._found = found
        self.token_groups = tuple(found)
        """The groups the token pass found, before any regex-only term is read: the same
        whichever groups the detectors go on to ask for."""
        self._checked: set[str] = set()

    def _walk(self, found: dict[str, list[Hit]], infos: list[_TokenInfo], i: int) -> None:
        """Every term starting at token ``i``, in trie order (``infos`` ends in padding)."""
        ends = _walk(infos, i, len(infos))
        assert ends is not None  # the padding stops every term before the limit
        for node, length in ends:
            self._record(found, node, i, i + length)

    @property
    def word_count(self) -> int:
        """Words (and symbols) in the text, sentence markers left out."""
        return len(self.tokens) - len(self._mark_tokens)

    def sentence(self, token: int) -> int:
        """The sentence a token index lies in."""
        return bisect.bisect_left(self._marks, token) if self._marks else 0

    def _record(self, found: dict[str, list[Hit]], node: _Node, i: int, j: int) -> None:
        sentence = self.sentence(i)
        for name in node.groups:
            found.setdefault(name, []).append(Hit(i, j, sentence))
        for name, refused in node.guarded:
            if any(tuple(self.tokens[max(0, i - len(r)) : i]) == r for r in refused):
                continue
            found.setdefault(name, []).append(Hit(i, j, sentence))

    def get(self, name: str) -> list[Hit]:
        """Hits of one group, in text order; empty when the group is unknown or absent."""
        if name in self.matcher.regexes and name not in self._checked:
            self._checked.add(name)
            extra = self._regex_hits(name)
            if extra:
                merged = self._found.get(name, []) + extra
                merged.sort(key=lambda h: (h.start, h.end))
                self._found[name] = merged
        return self._found.get(name, _EMPTY)

    @property
    def found(self) -> dict[str, list[Hit]]:
        """The groups found so far (regex-only terms are added as groups are asked for)."""
        return self._found

    def has(self, name: str) -> bool:
        if name in self._found:
            return True  # a group is only recorded with a hit
        return name in self.matcher.regexes and bool(self.get(name))

    def get_in_sentences(self, name: str, first: int, last: int) -> list[Hit]:
        """Hits of one group that start in sentences ``first`` to ``last``.

        Regex-only terms read just the text of those sentences: a group asked about
        one request (the negations) costs a sentence, not the whole message.
        """
        if name in self._checked or name not in self.matcher.regexes:
            return [h for h in self.get(name) if first <= h.sentence <= last]
        key = (name, first, last)
        hits = self._sentence_hits.get(key)
        if hits is None:
            low, high = self._sentence_chars(first, last)
            hits = self._found.get(name, []) + self._regex_hits(name, low, high)
            hits = sorted((h for h in hits if first <= h.sentence <= last), key=hit_order)
            self._sentence_hits[key] = hits
        return hits

    def _sentence_chars(self, first: int, last: int) -> tuple[int, int]:
        """The characters of sentences ``first`` to ``last`` (the whole text if unsure)."""
        marks = self._marks
        begin = marks[first - 1] + 1 if 0 < first <= len(marks) else 0
        end = marks[last] - 1 if last < len(marks) else len(self.tokens) - 1
        if not self.tokens or end < begin or not self._agree():
            return 0, len(self.text)
        return self._span(begin)[0], self._span(end)[1]

    def _regex_hits(self, name: str, low: int = 0, high: int | None = None) -> list[Hit]:
        terms = self.matcher.regexes.get(name)
        if not terms:
            return []
        text = self.text
        high = len(text) if high is None else high
        window = text[low:high] if low or high < len(text) else text
        hits: list[Hit] = []
        for term in terms:
            if term.needles and not any(map(window.__contains__, term.needles)):
                continue
            for match in term.pattern.finditer(text, low, high):
                if match.end() > match.start():
                    hits.append(self._hit_at(match.start(), match.end()))
        return hits

    def _token_spans(self) -> list[tuple[int, int]]:
        """Character span of every token, markers included (as empty spans)."""
        if self._spans is None:
            text = self.text
            words = [m.span() for m in _TOKEN_AT.finditer(text)]
            spans: list[tuple[int, int]] = []
            marks = iter(self._mark_tokens)
            next_mark = next(marks, -1)
            words_iter = iter(words)
            for index in range(len(self.tokens)):
                if index == next_mark:
                    at = spans[-1][1] if spans else 0
                    spans.append((at, at))
                    next_mark = next(marks, -1)
                else:
                    spans.append(next(words_iter, (len(text), len(text))))
            if len(words) != len(self.tokens) - len(self._mark_tokens):
                # Tokenisers disagree: quote nothing rather than the whole message.
                spans = [(0, 0)] * len(self.tokens)
            self._spans = spans
        return self._spans

    def sentence_at(self, position: int) -> int:
        """The sentence of the word at a character position of the normalised text.

        Counted with ``str.split`` on the text before ``position`` when the words are
        plain (the common case), so no span of every token is built.
        """
        known = self._known_sentences.get(position)
        if known is not None:
            return known
        spaced = self._plain_words()
        if spaced is None or not 0 <= position < len(spaced):
            return self._hit_at(position, position + 1).sentence
        if spaced[position] == " ":  # between words: the next token, as _hit_at reads it
            word = len(spaced[:position].split())
        else:
            word = len(spaced[: position + 1].split()) - 1
        # A symbol ("$", "%") is a token of its own but a space in ``spaced``.
        word += sum(self.text.count(symbol, 0, position) for symbol in self._symbols)
        return self._sentence_of_word(word)

    def _sentence_of_word(self, word: int) -> int:
        """The sentence of a word, counted among the tokens that are not markers."""
        if self._words_before_marks is None:
            self._words_before_marks = [at - i for i, at in enumerate(self._mark_tokens)]
        token = word + bisect.bisect_right(self._words_before_marks, word)
        return self.sentence(min(token, max(0, len(self.tokens) - 1)))

    def _hit_at(self, start: int, end: int) -> Hit:
        if self._span_edges is None:
            spans = self._token_spans()
            self._span_edges = ([s[0] for s in spans], [s[1] for s in spans])
        starts, ends = self._span_edges
        first = min(bisect.bisect_left(ends, start + 1), max(0, len(starts) - 1))
        last = max(first + 1, bisect.bisect_left(starts, end))
        return Hit(first, min(last, len(starts)), self.sentence(first))

    def _agree(self) -> bool:
        """Whether the words of the text line up with the tokens that are not markers.

        They do not when two markers were merged into one sentence end ("\\n\\n"): then
        evidence quotes the whole text, as it always has.
        """
        if self._agreed is None:
            tokens = self.tokens
            if self._plain_words() is None:
                words = self._all_words()
                self._agreed = len(words) == len(tokens) - len(self._mark_tokens)
            else:  # then the words are exactly the tokens that are not markers
                self._agreed = True
        return self._agreed

    def _plain_words(self) -> str | None:
        """The text with every character that is no part of a word made a space.

        ``None`` when CJK characters (one token each) or a marker character are in
        the text: then words are read with :data:`_TOKEN_AT`.
        """
        if not self._spaced_done:
            self._spaced_done = True
            text = self.text
            if _MARK in text:
                return None
            if text.isascii():
                symbols = tuple(s for s in "$%" if s in text)
            elif _CJK.search(text) is not None:
                return None
            else:
                symbols = tuple(s for s in _SYMBOLS if s in text)
            spaced = _blank(text)
            for symbol in symbols:
                spaced = spaced.replace(symbol, " ")
            self._symbols = symbols
            self._spaced = spaced
        return self._spaced

    def _all_words(self) -> list[tuple[int, int]]:
        if self._words is None:
            self._words = list(map(_SPAN, _TOKEN_AT.finditer(self.text)))
        return self._words

    def _word_span(self, word: int, token: int) -> tuple[int, int]:
        """The span of one word (``token`` is its index among the tokens).

        Counted from the nearer end of the text with ``str.split``, so evidence at
        either end of a long message is found without reading all of it. A symbol
        ("$", "%") is a token of its own: found by its count, and not counted as a word.
        """
        text = self.text
        spaced = self._plain_words()
        tokens = self.tokens
        if spaced is None or self._words is not None:
            words = self._all_words()
            return words[word] if word < len(words) else (len(text), len(text))
        length = len(tokens[token])
        plain = len(tokens) - len(self._mark_tokens)  # words, symbols included
        if self._symbols:
            symbol = tokens[token]
            if symbol in self._symbols:
                at = -1
                for _ in range(tokens[:token].count(symbol) + 1):
                    at = text.find(symbol, at + 1)
                return at, at + 1
            plain -= sum(map(tokens.count, self._symbols))
            word -= sum(map(tokens[:token].count, self._symbols))
        self._spans_asked += 1
        if self._spans_asked > _SPLITS_BEFORE_INDEX:
            # Many spans in one text (a long, flagged message): index every word once.
            if self._word_starts is None:
                pieces = spaced.split(" ")  # every separator is one space: C speed below
                starts = accumulate(map(add, map(len, pieces), repeat(1)), initial=0)
                self._word_starts = list(compress(starts, pieces))
            start = self._word_starts[word]
            return start, start + length
        after = plain - 1 - word  # words after this one
        if after < word:
            end = len(spaced.rsplit(None, after)[0])
            return end - length, end
        start = len(spaced) - len(spaced.split(None, word)[word])
        return start, start + length

    def _span(self, index: int) -> tuple[int, int]:
        """The span of one token, as :meth:`_token_spans` gives it, without building all."""
        if not self._agree():
            return 0, 0  # tokenisers disagree: quote nothing rather than the whole message
        span = self._found_spans.get(index)
        if span is None:
            marks = self._mark_tokens
            before = bisect.bisect_left(marks, index)
            if before < len(marks) and marks[before] == index:
                at = self._span(index - 1)[1] if index > 0 else 0
                span = (at, at)
            else:
                span = self._word_span(index - before, index)
            self._found_spans[index] = span
        return span

    def char_span(self, hit: Hit) -> tuple[int, int]:
        """Where a hit lies in the normalised text."""
        size = len(self.tokens)
        if not size:
            return 0, 0
        first = self._span(min(hit.start, size - 1))
        last = self._span(min(max(hit.end - 1, hit.start), size - 1))
        if first[1] > first[0] and hit.start < size:
            # The analyzer asks next for the sentence at this very place.
            self._known_sentences[first[0]] = hit.sentence
        return first[0], max(first[0], last[1])

    def groups(self, names: Iterable[str]) -> dict[str, list[Hit]]:
        return {name: hits for name in names if (hits := self.get(name))}

    def list_scope(self, first: int, last: int) -> tuple[int, int] | None:
        """The sentences of the bulleted or numbered list that holds sentences ``first``
        to ``last``, with the lines that open the list; None outside a list."""
        if self._lists is None:
            self._lists = self._list_blocks()
        for opening, items, end in self._lists:
            if items <= first and last <= end:
                return opening, end
        return None

    def _list_blocks(self) -> list[tuple[int, int, int]]:
        """(first sentence of the opening lines, first of the items, last of the items) of
        every list: two or more item lines in a row (blank lines between them allowed),
        opened by the two lines of prose before them ("Delivery app for a bakery." then
        "Features:")."""
        text = self.text
        if "\n" not in text or _LIST_ITEM.search(text) is None:
            return []
        blocks: list[tuple[int, int, int]] = []
        prose: list[int] = []  # first sentences of the prose lines since the last item
        items: list[tuple[int, int]] = []
        opening = 0
        for line, first, last in self._line_sentences():
            if _LIST_ITEM.match(line):
                if not items:  # a list starts here
                    opening = prose[-2:][0] if prose else first
                items.append((first, last))
                prose = []
                continue
            if len(items) >= 2:
                blocks.append((opening, items[0][0], items[-1][1]))
            items = []
            prose.append(first)
        if len(items) >= 2:
            blocks.append((opening, items[0][0], items[-1][1]))
        return blocks

    def _line_sentences(self) -> Iterator[tuple[str, int, int]]:
        """Each line with a word in it, with the sentences of its first and last word:
        :meth:`sentence_at` of both, counted line by line so that a long list costs one
        pass over the text, not one per line."""
        spaced = self._plain_words()
        words_before = 0  # words and symbols of the lines above, as sentence_at counts them
        start = 0
        for line in self.text.split("\n"):
            first_word = _LINE_WORD.search(line)
            last_word = _LINE_WORD.search(line[::-1])
            if first_word is not None and last_word is not None:
                ends = (first_word.start(), len(line) - 1 - last_word.start())
                if spaced is None:
                    first, last = (self.sentence_at(start + at) for at in ends)
                else:
                    first, last = (
                        self._sentence_of_word(
                            words_before + self._words_in(line, spaced, start, at + 1) - 1
                        )
                        for at in ends
                    )
                yield line, first, last
            if spaced is not None:
                words_before += self._words_in(line, spaced, start, len(line))
            start += len(line) + 1

    def _words_in(self, line: str, spaced: str, start: int, length: int) -> int:
        """Words and symbols in the first ``length`` characters of a line starting at
        ``start``: a line ends in a blank, so no word runs on into the next one."""
        words = len(spaced[start : start + length].split())
        return words + sum(line.count(symbol, 0, length) for symbol in self._symbols)

    def in_address(self, hit: Hit) -> bool:
        """Whether the hit lies inside an e-mail address, an @handle or a bare handle
        (words joined by "_"): the words of a name someone chose ("oleg_shop_dev") say
        nothing about what the message is about."""
        if "@" not in self.text and "_" not in self.text:
            return False
        if self._addresses is None:
            self._addresses = [m.span() for m in _ADDRESS.finditer(self.text)]
        start, end = self.char_span(hit)
        return any(low <= start and end <= high for low, high in self._addresses)


_EMPTY: list[Hit] = []
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*•·–—▪►✓✔➤→]|\d{1,2}[.)])[ \t]+\w", re.MULTILINE)
"""A line that is an item of a list: a bullet or a number, then words."""
_LINE_WORD = re.compile(r"[^\W_]")
_ADDRESS = re.compile(r"[\w.+-]*@[\w.-]+|[^\W_]*_\w*")


def hit_order(hit: Hit) -> tuple[int, int]:
    """Hits in text order: by first token, then by last."""
    return hit.start, hit.end


_SPLITS_BEFORE_INDEX = 3
"""Spans found by splitting from the nearer end before all words are indexed at once."""
_MARK = "\x07"
"""Marks a sentence end among the tokens: ASCII (so translate stays fast) and never in
normalised text, which has lost its control characters."""
SENTENCE_TOKEN = _MARK
"""The token a :class:`Scan` puts at each sentence end (for readers of ``Scan.tokens``)."""
_SENTENCE_MARK = f" {_MARK} "
_ENDERS = (". ", "! ", "? ", "; ", ".\t", "?\t", "!\t")
_WIDE_ENDERS = ("。", "؟", "… ")
"""Enders that normalising leaves as they are; the full-width "？" and "！" it folds to
ASCII, and :data:`_CJK_AFTER_ENDER` reads those."""


def _sentence_marks(tokens: list[str]) -> tuple[list[int], list[int]]:
    """The sentence ends (a run of markers counts once) and every marker token."""
    marks: list[int] = []
    mark_tokens: list[int] = []
    at = -1
    try:
        while True:
            at = tokens.index(_MARK, at + 1)
            mark_tokens.append(at)
            if not marks or marks[-1] != at - 1 or tokens[at - 1] != _MARK:
                marks.append(at)
            else:
                marks[-1] = at  # "\n\n" or ". \n" end one sentence, not two
    except ValueError:
        pass
    return marks, mark_tokens


def _mark_sentences(text: str) -> str:
    """Put a marker token at each sentence end: ". ", "? ", a newline, "。"..."""
    for ender in _ENDERS:
        if ender in text:
            text = text.replace(ender, _SENTENCE_MARK)
    if "\n" in text:
        text = text.replace("\n", _SENTENCE_MARK)
    if not text.isascii():
        for ender in _WIDE_ENDERS:
            if ender in text:
                text = text.replace(ender, _SENTENCE_MARK)
        if "?" in text or "!" in text:
            text = _CJK_AFTER_ENDER.sub(_SENTENCE_MARK, text)
    return text


_CJK_AFTER_ENDER = re.compile(f"[?!]+(?=[{_CJK_RANGES}])")
"""A question or exclamation mark with a Chinese or Japanese character right after it:
these scripts put no space after one, so the ASCII enders never see it end a sentence."""
