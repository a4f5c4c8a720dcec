"""Normalisation of a client's words before detection.

Every step keeps a map from each normalised character back to the original
text, so that evidence can always be quoted as the client wrote it.
Steps: compatibility forms and case folded, accents dropped from Latin
letters, invisible characters removed, look-alike Cyrillic and Greek letters
folded inside Latin words, leetspeak inside words, spaced or dotted-out
letters joined, "name at mail dot com" rebuilt, number words turned to digits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

from onplatform.detectors.base import MessageText

MAX_CHARS = 20_000
"""Longer inputs are cut: a client message is short, and work must stay bounded."""

_CONFUSABLES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ɡ": "g", "һ": "h", "ԛ": "q", "ԝ": "w", "ү": "y", "ӏ": "l",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ς": "s", "γ": "y",
}
_LEET = {"4": "a", "3": "e", "1": "i", "0": "o", "5": "s", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "¥": "y", "€": "e", "!": "i", "|": "l", "+": "t"}

_NUMBER_WORDS = {
    # English, Spanish, Portuguese, French, German, Italian, Russian, Indonesian
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
    "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5", "seis": "6",
    "siete": "7", "ocho": "8", "nueve": "9",
    "um": "1", "dois": "2", "quatro": "4", "sete": "7", "oito": "8", "nove": "9",
    "un": "1", "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "sept": "7",
    "huit": "8", "neuf": "9",
    "null": "0", "eins": "1", "zwei": "2", "drei": "3", "vier": "4", "funf": "5", "sechs": "6",
    "sieben": "7", "acht": "8", "neun": "9",
    "due": "2", "tre": "3", "quattro": "4", "sei": "6", "sette": "7", "otto": "8",
    "ноль": "0", "один": "1", "два": "2", "три": "3", "четыре": "4", "пять": "5", "шесть": "6",
    "семь": "7", "восемь": "8", "девять": "9",
    "nol": "0", "satu": "1", "dua": "2", "tiga": "3", "empat": "4", "lima": "5", "enam": "6",
    "tujuh": "7", "delapan": "8", "sembilan": "9",
}
_AT_WORDS = r"at|arroba|chez|bei|presso|małpa|malpa|собака|собачка|et|at\s*sign"
_DOT_WORDS = r"dot|punto|ponto|point|punkt|kropka|точка|nokta|titik|nokta|dian|tuldok"
_TLDS = r"com|net|org|io|co|me|ru|de|fr|es|it|br|in|ua|pl|tr|id|ph|uk|info|biz|us|cn"

_SPACED_OUT = re.compile(
    r"(?<![^\W\d_])(?:[^\W\d_][ ]){3,}[^\W\d_](?![^\W\d_])"
    r"|(?<![^\W\d_])(?:[^\W\d_][.\-_*·•/,][ ]?){2,}[^\W\d_](?![^\W\d_])"
)
_OBFUSCATED_EMAIL = re.compile(
    rf"(?<![\w.])([a-z0-9][a-z0-9._+\-]*)\s*[\[\(\{{<]?\s*(?:{_AT_WORDS})\s*[\]\)\}}>]?\s*"
    rf"([a-z0-9\-]+)\s*[\[\(\{{<]?\s*(?:{_DOT_WORDS}|\.)\s*[\]\)\}}>]?\s*({_TLDS})\b"
)
_SPACED_AT = re.compile(r"([a-z0-9._+\-]+)\s*[\[\(\{<]\s*@\s*[\]\)\}>]\s*|([a-z0-9._+\-]+) @ ")
_NUMBER_WORD_RUN = re.compile(
    r"(?<!\w)(?:(?:" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) +
    r")[\s,.\-]*){5,}(?!\w)"
)
_NUMBER_WORD = re.compile(r"\w+")
_LEET_CANDIDATE = re.compile(r"[^\W\d_][0-9@$¥€!|+]+(?=[^\W\d_])")
_HAS_LEET = re.compile(r"[^\W\d_][0-9@$¥€!|+]+[^\W\d_]")


class _Text:
    """A string being rewritten, with the original index of each character."""

    __slots__ = ("chars", "origins")

    def __init__(self, chars: str, origins: list[int]) -> None:
        self.chars = chars
        self.origins = origins

    def rewrite(self, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> None:
        if pattern.search(self.chars) is None:
            return
        pieces: list[str] = []
        origins: list[int] = []
        cursor = 0
        for match in pattern.finditer(self.chars):
            start, end = match.span()
            pieces.append(self.chars[cursor:start])
            origins.extend(self.origins[cursor:start])
            replacement = replace(match)
            if replacement == match.group(0):
                origins.extend(self.origins[start:end])
            else:
                origins.extend(_spread(self.origins[start:end], len(replacement)))
            pieces.append(replacement)
            cursor = end
        pieces.append(self.chars[cursor:])
        origins.extend(self.origins[cursor:])
        self.chars = "".join(pieces)
        self.origins = origins


def _spread(origins: list[int], length: int) -> list[int]:
    """Map ``length`` new characters onto the original characters they replace."""
    if not origins:
        return [0] * length
    if length <= len(origins):
        return origins[:length] if length else []
    return [origins[min(i * len(origins) // length, len(origins) - 1)] for i in range(length)]


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    folded = unicodedata.normalize("NFKC", char).casefold()
    out = []
    for piece in folded:
        category = unicodedata.category(piece)
        if category in {"Cf", "Cc"} and piece not in "\n\t":
            continue  # zero-width and other invisible characters
        if category == "Mn":
            continue
        if category == "Zs":
            out.append(" ")
            continue
        if piece.isalpha() and not piece.isascii():
            decomposed = unicodedata.normalize("NFD", piece)
            if decomposed[0].isascii() and unicodedata.name(piece, "").startswith("LATIN"):
                piece = decomposed[0]  # accents dropped on Latin letters only
        out.append(piece)
    return "".join(out)


def _fold(text: str) -> _Text:
    if text.isascii():
        lowered = text.lower()
        keep = [i for i, c in enumerate(lowered) if c.isprintable() or c in "\n\t"]
        if len(keep) == len(lowered):
            return _Text(lowered, list(range(len(lowered))))
        return _Text("".join(lowered[i] for i in keep), keep)
    pieces: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text):
        folded = _fold_char(char)
        pieces.append(folded)
        origins.extend([index] * len(folded))
    return _Text("".join(pieces), origins)


_MIXED_WORD = re.compile(r"[^\W\d_]+")


def _fold_confusables(text: _Text) -> None:
    if text.chars.isascii():
        return

    def fold(match: re.Match[str]) -> str:
        word = match.group(0)
        has_latin = any("a" <= c <= "z" for c in word)
        has_confusable = any(c in _CONFUSABLES for c in word)
        if not (has_latin and has_confusable):
            return word
        return "".join(_CONFUSABLES.get(c, c) for c in word)

    text.rewrite(_MIXED_WORD, fold)


def _fold_leet(text: _Text) -> None:
    if _HAS_LEET.search(text.chars) is None:
        return

    def fold(match: re.Match[str]) -> str:
        head, run = match.group(0)[0], match.group(0)[1:]
        if "@" in run:
            rest = text.chars[match.end():].split(None, 1)
            if rest and "." in rest[0]:
                return match.group(0)  # a real address, not w@tsapp
        return head + "".join(_LEET.get(c, c) for c in run)

    text.rewrite(_LEET_CANDIDATE, fold)


def _join_spaced(text: _Text) -> None:
    text.rewrite(_SPACED_OUT, lambda m: "".join(c for c in m.group(0) if c.isalpha()))


def _rebuild_emails(text: _Text) -> None:
    text.rewrite(_SPACED_AT, lambda m: (m.group(1) or m.group(2)) + "@")
    text.rewrite(_OBFUSCATED_EMAIL, lambda m: f"{m.group(1)}@{m.group(2)}.{m.group(3)}")


def _number_words(text: _Text) -> None:
    def digits(match: re.Match[str]) -> str:
        words = _NUMBER_WORD.findall(match.group(0))
        return "".join(_NUMBER_WORDS.get(word, "") for word in words) + (
            " " if match.group(0)[-1:].isspace() else ""
        )

    text.rewrite(_NUMBER_WORD_RUN, digits)


def normalize(original: str) -> MessageText:
    """Return the client's words in the form the detectors read."""
    original = original[:MAX_CHARS]
    text = _fold(original)
    _fold_confusables(text)
    _fold_leet(text)
    _join_spaced(text)
    _rebuild_emails(text)
    _number_words(text)
    return MessageText(original, text.chars, (*text.origins, len(original)))


def normalize_term(term: str) -> str:
    """Fold a lexicon term like the text it will be matched against."""
    return _fold(term).chars
