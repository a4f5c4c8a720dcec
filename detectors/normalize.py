"""Normalisation of a client's words before detection.

Every step keeps a map from each normalised character back to the original
text, so that evidence can always be quoted as the client wrote it.
Steps: compatibility forms and case folded, accents dropped from Latin
letters, native digits made ASCII, invisible characters removed, look-alike
Cyrillic, Greek and Latin letters folded inside mixed words, leetspeak inside
words, spaced or dotted-out letters joined, "name at mail dot com" rebuilt,
number words turned to digits.

Speed matters (the daemon reads every message): each step is guarded by a
cheap test (a substring, a character-class search, a set lookup on tokens)
and the expensive rewrite runs only on the few texts that need it. When
nothing changes the length, the offsets are a ``range`` (no per-character
list at all).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
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
}  # fmt: skip
_LATIN_TO_CYRILLIC = {
    "a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "x": "х", "y": "у", "k": "к", "m": "м",
    "t": "т", "h": "н", "b": "в", "i": "і", "u": "и",
}  # fmt: skip
"""Latin letters that stand for Cyrillic ones inside a Cyrillic word. Not "n" for "п":
the small capital "ɴ" reads as "n" in Latin spam and would then become "п", not "н"."""
_UNAMBIGUOUS_CYRILLIC = re.compile(r"[бгдєжзийлпфцчшщъыьэюяґ]")
_CYRILLIC_LETTER = re.compile(r"[\u0400-\u04ff]")
_LATIN_LETTER = re.compile(r"[a-z]")
_SMALL_CAPITALS = {
    # Phonetic small capitals and turned letters, which NFKC leaves alone: spam writes
    # "ᴨᴩиʙᴇᴛ, нᴀᴨиɯиᴛᴇ" to slip past filters. Each becomes the letter it shows; the
    # mixed-word folding then settles the script.
    "ᴀ": "a", "ʙ": "в", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j",
    "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t",
    "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    "ᴦ": "г", "ᴧ": "л", "ᴨ": "п", "ᴩ": "р", "ᴫ": "л", "ɯ": "ш", "ʍ": "м", "ɸ": "ф",
}  # fmt: skip
_LEET = {"4": "a", "3": "e", "1": "i", "0": "o", "5": "s", "7": "t", "8": "b", "9": "g",
         "@": "a", "$": "s", "¥": "y", "€": "e", "!": "i", "|": "l", "+": "t"}  # fmt: skip
_UNDECOMPOSED_LATIN = {"ł": "l", "ı": "i", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ŀ": "l"}
_QUOTES = {"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "“": '"', "”": '"', "„": '"'}

_NUMBER_WORDS = {
    # English, Spanish, Portuguese, French, German, Italian, Russian, Ukrainian, Polish,
    # Turkish, Indonesian, Tagalog, romanised Hindi (accents already folded).
    "zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "double": "", "triple": "",
    "cero": "0", "uno": "1", "dos": "2", "tres": "3", "cuatro": "4", "cinco": "5", "seis": "6",
    "siete": "7", "ocho": "8", "nueve": "9",
    "um": "1", "dois": "2", "quatro": "4", "sete": "7", "oito": "8", "nove": "9",
    "un": "1", "deux": "2", "trois": "3", "quatre": "4", "cinq": "5", "sept": "7",
    "huit": "8", "neuf": "9",
    "null": "0", "eins": "1", "zwei": "2", "drei": "3", "vier": "4", "funf": "5", "fuenf": "5",
    "sechs": "6", "sieben": "7", "acht": "8", "neun": "9",
    "due": "2", "tre": "3", "quattro": "4", "sei": "6", "sette": "7", "otto": "8",
    "ноль": "0", "нуль": "0", "один": "1", "два": "2", "три": "3", "четыре": "4", "пять": "5",
    "шесть": "6", "семь": "7", "восемь": "8", "девять": "9",
    "дві": "2", "чотири": "4", "п'ять": "5", "шість": "6", "сім": "7",
    "вісім": "8", "дев'ять": "9",
    "jeden": "1", "dwa": "2", "trzy": "3", "cztery": "4", "piec": "5", "szesc": "6",
    "siedem": "7", "osiem": "8", "dziewiec": "9",
    "sifir": "0", "bir": "1", "iki": "2", "uc": "3", "dort": "4", "bes": "5", "alti": "6",
    "yedi": "7", "sekiz": "8", "dokuz": "9",
    "nol": "0", "kosong": "0", "satu": "1", "dua": "2", "tiga": "3", "empat": "4", "lima": "5",
    "enam": "6", "tujuh": "7", "delapan": "8", "sembilan": "9",
    "sero": "0", "isa": "1", "tatlo": "3", "apat": "4", "anim": "6", "pito": "7",
    "walo": "8", "siyam": "9",
    "shunya": "0", "ek": "1", "do": "2", "teen": "3", "char": "4", "chaar": "4", "paanch": "5",
    "panch": "5", "chhe": "6", "chhah": "6", "saat": "7", "aath": "8", "nau": "9",
}  # fmt: skip
_PLUS_WORDS = {"plus", "mas", "mais", "плюс", "arti", "tambah", "plas"}
_DOUBLES = {"double": 2, "triple": 3}
_CJK_DIGITS = {"零": "0", "〇": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3",
               "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}  # fmt: skip

_AT_WORDS = ("at", "arroba", "arobase", "chez", "bei", "presso", "chiocciola", "malpa",
             "собака", "собачка", "равлик", "et", "at the rate", "at sign", "at the rate of",
             "at", "ät", "艾特", "آت")  # fmt: skip
_DOT_WORDS = ("dot", "punto", "ponto", "point", "punkt", "kropka", "точка", "крапка", "nokta",
              "titik", "tuldok", "dian", "点", "نقطة")  # fmt: skip
_TLDS = "com|net|org|io|co|me|ru|de|fr|es|it|br|in|ua|pl|tr|id|ph|uk|info|biz|us|cn|dev|app"

_SPACED_HINT = re.compile(r"[ .\-_*·•/,][^\W\d_][ .\-_*·•/,]+[^\W\d_][ .\-_*·•/,]")
_SPACED_CLASSES = (" a a a ", " a  a  a ", " a a  a ", " a  a a ")
_SPACED_CLASSES_HINT = re.compile(" a {1,2}a {1,2}a ")
"""Any of ``_SPACED_CLASSES``, in one search."""
_LEET_CLASSES = re.compile("a0+a")
"""In ASCII text, a run of leet characters between two letters: what leet folding reads."""
_SPACED_OUT = re.compile(
    r"(?<![^\W\d_])(?:[^\W\d_][ ]){3,}[^\W\d_](?![^\W\d_])"
    r"|(?<![^\W\d_])(?:[^\W\d_][.\-_*·•/,][ ]?){2,}[^\W\d_](?![^\W\d_])"
)
_AT_PATTERN = "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in
                       sorted(set(_AT_WORDS), key=len, reverse=True))  # fmt: skip
_DOT_PATTERN = "|".join(re.escape(w) for w in _DOT_WORDS)
_WS = r"[\s\u200b]*"
_LOCAL = rf"[a-z0-9][a-z0-9_+\-]*(?:(?:{_WS}(?:{_DOT_PATTERN}){_WS}|\.)[a-z0-9_+\-]+){{0,3}}"
_OBFUSCATED_EMAIL = re.compile(
    rf"(?<![\w.])({_LOCAL}){_WS}[\[\(\{{<]?{_WS}(?:{_AT_PATTERN}|@){_WS}[\]\)\}}>]?{_WS}"
    rf"([a-z0-9\-]+){_WS}[\[\(\{{<]?{_WS}(?:{_DOT_PATTERN}|\.){_WS}[\]\)\}}>]?{_WS}({_TLDS})\b"
    r"(?!/)"  # "a case study at github.com/..." is a link, not an address
)
_NOT_A_LOCAL_PART = frozenset(
    {
        "is",
        "it",
        "me",
        "us",
        "here",
        "there",
        "them",
        "this",
        "that",
        "one",
        "work",
        "works",
        "portfolio",
        "profile",
        "study",
        "studies",
        "hosted",
        "live",
        "look",
        "see",
        "find",
        "found",
        "online",
        "available",
        "demo",
    }
)
"""Words that stand before "at <site>" in a sentence ("my portfolio is at behance.net"),
never the name part of a spelled-out address."""
_LOCAL_DOT = re.compile(rf"{_WS}(?:{_DOT_PATTERN}){_WS}")
_AT_FIRST = "".join(sorted({w[0] for w in _AT_WORDS}))
_AT_SPACED = re.compile(rf" (?=[{_AT_FIRST}])(?:{_AT_PATTERN}) ")
_AT_OTHER = re.compile(rf"[\[\(\{{<](?:{_AT_PATTERN}|@)[\]\)\}}>]|@|艾特|آت")
_AT_OTHER_HINTS = ("@", "at)", "at]", "at}", "at>", "艾特", "آت", "et)", "et]")
_AFTER_AT = re.compile(
    rf"{_WS}[\]\)\}}>]?{_WS}[a-z0-9\-]+{_WS}[\[\(\{{<]?{_WS}(?:{_DOT_PATTERN}|\.){_WS}"
    rf"[\]\)\}}>]?{_WS}(?:{_TLDS})\b"
)
_SPACED_AT = re.compile(
    r"(?<![a-z0-9._+\-])([a-z0-9._+\-]+)\s*[\[\(\{<]\s*@\s*[\]\)\}>]\s*"
    r"|(?<![a-z0-9._+\-])([a-z0-9._+\-]+) @ (?=\w)"
)
"""Each alternative starts only where a run of address characters starts (a match
always takes the whole run), so a long run is read once, not once per character."""
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_NUMBER_GAP = re.compile(r"[\s,.\-/():]*")
_CJK_DIGIT_RUN = re.compile(r"[零〇一幺二两三四五六七八九加][零〇一幺二两三四五六七八九\s]{6,}")
_LEET_HINT = re.compile(r"(?<![0-9@$¥€!|+])[0-9@$¥€!|+]++(?=[^\W\d_])")
"""A whole run of leet characters before a letter: tried once per run, never backtracked."""
_LEET_CANDIDATE = re.compile(
    r"(?<=[a-z])[0-9@$¥€!|+]+(?=[^\W\d_])|(?<=[^\W\d_])[0-9@$¥€!|+]+(?=[a-z])"
)
"""A run of leet characters between two letters, one of them Latin: leetspeak writes Latin
words ("wh@tsapp"); between two Cyrillic words a "!" is a missing space ("привет!ищу")."""
_WHITE_SPACE = re.compile(r"\s")
_MIXED_HINT = re.compile(r"[a-z][^\W\d_a-z]|[^\W\d_a-z][a-z]")
_MIXED_WORD_WITH_HINT = re.compile(
    r"(?<![^\W\d_])[^\W\d_]*?(?:[a-z][^\W\d_a-z]|[^\W\d_a-z][a-z])[^\W\d_]*"
)
"""A whole word of letters with a Latin letter next to a non-Latin one: starts only at a
word start, and the lazy part never backtracks past the word, so it stays linear."""
_ASCII_INVISIBLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class _Text:
    """A string being rewritten, with the original index of each character.

    ``origins`` stays ``None`` while the text maps one to one onto the original.
    """

    __slots__ = ("chars", "disguised", "origins")

    def __init__(
        self, chars: str, origins: list[int] | None, disguised: list[tuple[int, int]] | None = None
    ) -> None:
        self.chars = chars
        self.origins = origins
        self.disguised = disguised if disguised is not None else []
        """Original character ranges that a rewrite undid (leet, spacing, "at"/"dot"...)."""

    def offsets(self) -> list[int]:
        if self.origins is None:
            self.origins = list(range(len(self.chars)))
        return self.origins

    def rewrite(self, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> None:
        self.rewrite_matches(list(pattern.finditer(self.chars)), replace)

    def rewrite_matches(
        self, matches: Sequence[re.Match[str]], replace: Callable[[re.Match[str]], str]
    ) -> None:
        edits = []
        for match in matches:
            replacement = replace(match)
            if replacement != match.group(0):
                edits.append((match.start(), match.end(), replacement))
        self.apply(edits)

    def apply(self, edits: Sequence[tuple[int, int, str]]) -> None:
        """Replace non-overlapping ``(start, end, text)`` pieces, in order."""
        if not edits:
            return
        old = self.offsets()
        pieces: list[str] = []
        origins: list[int] = []
        cursor = 0
        for start, end, replacement in edits:
            if start < cursor:
                continue
            pieces.append(self.chars[cursor:start])
            origins.extend(old[cursor:start])
            if end > start:
                self.disguised.append((old[start], old[end - 1] + 1))
            origins.extend(_spread(old[start:end], len(replacement)))
            pieces.append(replacement)
            cursor = end
        pieces.append(self.chars[cursor:])
        origins.extend(old[cursor:])
        self.chars = "".join(pieces)
        self.origins = origins


def _spread(origins: list[int], length: int) -> list[int]:
    """Map ``length`` new characters onto the original characters they replace."""
    if not origins:
        return [0] * length
    if length <= 1:
        return origins[:length]
    if length <= len(origins):  # spread evenly, first to first and last to last
        last = len(origins) - 1
        return [origins[i * last // (length - 1)] for i in range(length)]
    return [origins[min(i * len(origins) // length, len(origins) - 1)] for i in range(length)]


@lru_cache(maxsize=16384)
def _fold_char(char: str) -> str:
    if char in _QUOTES:
        return _QUOTES[char]
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
        if category == "Nd" and not piece.isascii():
            out.append(str(unicodedata.digit(piece)))  # native digits: ٤ -> 4
            continue
        if piece in _UNDECOMPOSED_LATIN:
            out.append(_UNDECOMPOSED_LATIN[piece])
            continue
        if piece in _SMALL_CAPITALS:
            out.append(_SMALL_CAPITALS[piece])
            continue
        if piece.isalpha() and not piece.isascii():
            decomposed = unicodedata.normalize("NFD", piece)
            if decomposed[0].isascii() and unicodedata.name(piece, "").startswith("LATIN"):
                out.append(decomposed[0])  # accents dropped on Latin letters only
                continue
        out.append(_QUOTES.get(piece, piece))
    return "".join(out)


def _unchanged_by_fold(code: int) -> bool:
    char = chr(code)
    return _fold_char.__wrapped__(char) == char


def _changing_class() -> str:
    """A character class of every character :func:`_fold_char` may change.

    Computed once at import over the Basic Multilingual Plane (under 0.1 s); controls,
    surrogates and the other planes are always looked at one by one.
    """
    ranges: list[str] = []
    start = -1
    for code in range(0x80, 0x10000):
        changes = not (0xD800 <= code <= 0xDFFF) and not _unchanged_by_fold(code)
        if changes and start < 0:
            start = code
        elif not changes and start >= 0:
            ranges.append(f"\\u{start:04x}-\\u{code - 1:04x}")
            start = -1
    if start >= 0:
        ranges.append(f"\\u{start:04x}-\\uffff")
    always = "\\x00-\\x08\\x0b-\\x1f\\x7f\\ud800-\\udfff\\U00010000-\\U0010ffff"
    return f"[{always}{''.join(ranges)}]"


_CHANGING = re.compile(_changing_class())
"""Characters of lowered text that folding changes (or that must be looked at)."""
_FOLDED: dict[str, str] = {}


def _latin1_fold(code: int) -> int | None:
    """The Latin-1 code a Latin-1 character folds to, if it folds to exactly one."""
    if code < 128:
        return None
    folded = _fold_char(chr(code))
    return ord(folded) if len(folded) == 1 and ord(folded) < 256 else None


_LATIN1_KEEP = bytes(
    code
    for code in range(256)
    if code in (9, 10) or 32 <= code < 127 or (code >= 128 and _latin1_fold(code) is not None)
)
"""Latin-1 characters that fold to exactly one character: a byte-for-byte translation."""
_LATIN1_TABLE = bytes(_latin1_fold(code) or code for code in range(256))


def _fold_lowered_char(char: str) -> str:
    """What a character of lowered text becomes (ASCII controls but tab and newline go)."""
    folded = _FOLDED.get(char)
    if folded is None:
        if char.isascii():
            folded = char if char.isprintable() or char in "\n\t" else ""
        else:
            folded = _fold_char(char)
        if len(_FOLDED) < 65536:
            _FOLDED[char] = folded
    return folded


def _fold(text: str) -> _Text:
    """Case, compatibility forms, accents, native digits and invisible characters folded.

    Character by character, each character of the text becomes ``_fold_char`` of it
    (ASCII: lowered, controls but tab and newline dropped). The lowered text is used
    whenever lowering kept the length (``_fold_char`` of a character and of its lower
    case agree for every code point), and only the characters that folding changes are
    looked at.
    """
    if text.isascii():
        lowered = text.lower()
        if lowered.isprintable() or _ASCII_INVISIBLE.search(lowered) is None:
            return _Text(lowered, None)  # no control character but tab and newline
        keep = [i for i, c in enumerate(lowered) if c.isprintable() or c in "\n\t"]
        return _Text("".join(lowered[i] for i in keep), keep)
    lowered = text.lower()
    if len(lowered) == len(text):
        try:
            raw = lowered.encode("latin-1")
        except UnicodeEncodeError:
            pass
        else:
            if not raw.translate(None, _LATIN1_KEEP):
                return _Text(raw.translate(_LATIN1_TABLE).decode("latin-1"), None)
        found = _CHANGING.findall(lowered)
        if not found:
            return _Text(lowered, None)
        folds = {char: _fold_lowered_char(char) for char in set(found)}
        if all(len(folded) == 1 for folded in folds.values()):
            chars = lowered
            for char, folded in folds.items():
                if folded != char:  # a folded character is never folded again
                    chars = chars.replace(char, folded)
            return _Text(chars, None)
        return _fold_changed(lowered, folds)
    return _fold_each(text)


def _fold_changed(lowered: str, folds: dict[str, str]) -> _Text:
    """Lowered text whose folding changes lengths: only the changing characters move."""
    pieces: list[str] = []
    origins: list[int] = []
    hidden: list[tuple[int, int]] = []
    cursor = 0
    for match in _CHANGING.finditer(lowered):
        at = match.start()
        folded = folds[match.group()]
        if len(folded) == 1 and folded == lowered[at]:
            continue
        if not folded and _is_invisible(lowered[at]):
            hidden.append((at, at + 1))
        pieces.append(lowered[cursor:at])
        origins.extend(range(cursor, at))
        pieces.append(folded)
        origins.extend([at] * len(folded))
        cursor = at + 1
    pieces.append(lowered[cursor:])
    origins.extend(range(cursor, len(lowered)))
    return _Text("".join(pieces), origins, hidden)


def _fold_each(original: str) -> _Text:
    """Character by character: for text whose lowering changed its length."""
    pieces: list[str] = []
    origins: list[int] = []
    hidden: list[tuple[int, int]] = []
    for index, char in enumerate(original):
        folded = char.lower() if char.isascii() else _fold_char(char)
        if char.isascii() and not (folded.isprintable() or folded in "\n\t"):
            continue
        if not folded and _is_invisible(char):
            hidden.append((index, index + 1))
        pieces.append(folded)
        origins.extend([index] * len(folded))
    return _Text("".join(pieces), origins, hidden)


def _is_invisible(char: str) -> bool:
    """A format character (zero-width space, soft hyphen...): dropping one inside a word
    undoes an evasion ("Tele\u200bgram"), unlike dropping an accent."""
    return unicodedata.category(char) == "Cf"


def _fold_mixed_word(word: str, cyrillic_text: bool) -> str:
    if _UNAMBIGUOUS_CYRILLIC.search(word) or (cyrillic_text and _reads_as_cyrillic(word)):
        return "".join(_LATIN_TO_CYRILLIC.get(c, c) for c in word)
    if not any("a" <= c <= "z" for c in word) or not any(c in _CONFUSABLES for c in word):
        return word
    return "".join(_CONFUSABLES.get(c, c) for c in word)


def _reads_as_cyrillic(word: str) -> bool:
    """Every Latin letter of the word has a Cyrillic twin, and a Cyrillic letter is in it:
    "oт", "cмc" in Russian text. "Теlеgram" has letters Cyrillic lacks, and stays Latin."""
    return all(c in _LATIN_TO_CYRILLIC for c in word if "a" <= c <= "z") and bool(
        _CYRILLIC_LETTER.search(word)
    )


def _fold_confusables(text: _Text) -> None:
    chars = text.chars
    if chars.isascii() or not _may_mix_scripts(chars) or _MIXED_HINT.search(chars) is None:
        return
    cyrillic_text = _mostly_cyrillic(chars)
    text.rewrite(_MIXED_WORD_WITH_HINT, lambda m: _fold_mixed_word(m.group(0), cyrillic_text))


def _mostly_cyrillic(chars: str) -> bool:
    """A word of look-alikes alone cannot say its script; the text around it can."""
    return len(_CYRILLIC_LETTER.findall(chars)) > len(_LATIN_LETTER.findall(chars))


def _may_mix_scripts(chars: str) -> bool:
    """Whether a Latin letter touches a non-ASCII character: a superset of
    :data:`_MIXED_HINT`, read on the UTF-8 bytes at C speed (the regex takes about
    0.1 ms on a kilobyte of Cyrillic text; this, a few microseconds)."""
    classes = chars.encode("utf-8", "surrogatepass").translate(_SCRIPT_BYTES)
    return b"au" in classes or b"ua" in classes


_SCRIPT_BYTES = bytes(
    ord("a") if ord("a") <= code <= ord("z") else ord("u") if code >= 128 else ord(".")
    for code in range(256)
)
"""UTF-8 bytes as Latin letter ``a``, part of a non-ASCII character ``u``, other ``.``."""


_CLASS_TABLE = {
    **{c: ord("a") for c in range(ord("a"), ord("z") + 1)},
    **{ord(c): ord("0") for c in "0123456789@$!|+"},
    **{ord(c): ord(" ") for c in " .-_*/,"},
}
for _code in range(128):
    _CLASS_TABLE.setdefault(_code, ord("x"))


def _classes(chars: str) -> str | None:
    """ASCII text as letter ``a``, leet ``0``, separator `` `` and other ``x`` (else None)."""
    if not chars.isascii():
        return None
    return " " + chars.translate(_CLASS_TABLE) + " "


def _fold_leet(text: _Text, classes: str | None) -> None:
    if classes is not None:
        if "a0" not in classes or _LEET_CLASSES.search(classes) is None:
            return  # no leet run between two letters
    elif _LEET_HINT.search(text.chars) is None:
        return
    chars = text.chars
    ahead = [-1, -1]  # the next white space and the next dot, from the last run on

    def fold(match: re.Match[str]) -> str:
        run = match.group(0)
        if run.isdigit() and len(run) > 2:
            return run  # a number glued to words (covid19s), not leetspeak
        if "@" in run:
            # Whether the word after the run holds a dot; a letter always follows the
            # run, and both positions only move forward: linear over all the runs.
            end = match.end()
            if ahead[0] < end:
                space = _WHITE_SPACE.search(chars, end)
                ahead[0] = len(chars) if space is None else space.start()
            if ahead[1] < end:
                dot = chars.find(".", end)
                ahead[1] = len(chars) if dot < 0 else dot
            if ahead[1] < ahead[0]:
                return run  # a real address, not w@tsapp
        return "".join(_LEET.get(c, c) for c in run)

    text.rewrite(_LEET_CANDIDATE, fold)


def _join_spaced(text: _Text, classes: str | None) -> None:
    if classes is not None:
        if _SPACED_CLASSES_HINT.search(classes) is None:
            return
    elif _SPACED_HINT.search(text.chars) is None:
        return
    matches = list(_SPACED_OUT.finditer(text.chars))
    if not matches:
        return
    # A look-alike letter standing alone ("R е v o l u t") was no part of a mixed word
    # when the confusables were folded; once joined, it is.
    cyrillic_text = classes is None and _mostly_cyrillic(text.chars)
    text.rewrite_matches(
        matches,
        lambda m: _fold_mixed_word("".join(c for c in m.group(0) if c.isalpha()), cyrillic_text),
    )


def _rebuild_emails(text: _Text) -> None:
    chars = text.chars
    if "@" in chars:
        text.rewrite(_SPACED_AT, lambda m: (m.group(1) or m.group(2)) + "@")
        chars = text.chars
    windows: list[tuple[int, int]] = []
    found = list(_AT_SPACED.finditer(chars))
    if "@" in chars or (
        (")" in chars or "]" in chars or "}" in chars or ">" in chars or not chars.isascii())
        and any(hint in chars for hint in _AT_OTHER_HINTS)
    ):
        found += _AT_OTHER.finditer(chars)
    for match in found:
        start, end = match.span()
        after = _AFTER_AT.match(chars, end - 1 if match.group(0)[-1] == " " else end)
        if after is not None:
            windows.append((max(0, start - 80), after.end()))
    if not windows:
        return
    windows.sort()
    matches: list[re.Match[str]] = []
    for low, high in windows:
        begin = max(low, matches[-1].end()) if matches else low
        found_email = _OBFUSCATED_EMAIL.search(chars, begin, high)
        while found_email is not None and found_email.group(1) in _NOT_A_LOCAL_PART:
            found_email = _OBFUSCATED_EMAIL.search(chars, found_email.end(), high)
        if found_email is not None:
            matches.append(found_email)

    def address(match: re.Match[str]) -> str:
        local = _LOCAL_DOT.sub(".", match.group(1))
        return f"{local}@{match.group(2)}.{match.group(3)}"

    text.rewrite_matches(matches, address)


def _number_words(text: _Text) -> None:
    chars = text.chars
    if not chars.isascii() and _CJK_DIGIT_RUN.search(chars) is not None:
        text.rewrite(_CJK_DIGIT_RUN, _cjk_digits)
        chars = text.chars
    if not _may_hold_a_number_run(chars):
        return
    edits: list[tuple[int, int, str]] = []
    run: list[re.Match[str]] = []
    for match in [*_WORD.finditer(chars), None]:
        if match is not None:
            word = match.group(0)
            number = word in _NUMBER_WORDS or word.isdigit()
            plus = word in _PLUS_WORDS and not run
            gap_ok = not run or _NUMBER_GAP.fullmatch(chars, run[-1].end(), match.start())
            if (number or plus) and gap_ok:
                run.append(match)
                continue
        if run:
            spelled = sum(1 for m in run if m.group(0) in _NUMBER_WORDS)
            digits = _run_digits(run, chars)
            if spelled >= 3 and len(digits.strip("+ ")) >= 5:
                edits.append((run[0].start(), run[-1].end(), digits))
        run = []
        if match is not None:
            word = match.group(0)
            if word in _NUMBER_WORDS or word.isdigit() or word in _PLUS_WORDS:
                run.append(match)
    text.apply(edits)


def _may_hold_a_number_run(chars: str) -> bool:
    """Whether three number words follow each other, digits allowed between them.

    A cheap superset of what the rewrite below accepts: words are cut at every
    punctuation mark, so any run it finds is seen here too; each word becomes one
    letter (``n`` a number word, ``d`` digits, ``.`` anything else) at C speed.
    """
    if chars.isascii():  # bytes: translate and split are several times faster
        raw = chars.encode("ascii").translate(_ASCII_WORD_BYTES).split()
        # Counted only for the number words present (usually none, or "do" and "one").
        present = _ASCII_NUMBER_WORDS.intersection(raw)
        if not present or sum(map(raw.count, present)) < 3:
            return False
        words = chars.translate(_ASCII_WORD_TABLE).split()
    else:
        words = _WORD.findall(chars)
        if sum(map(_NUMBER_WORDS.__contains__, words)) < 3:
            return False
    kinds = "".join(
        map(_NUMBER_KIND.get, words, map(_DIGIT_KIND.__getitem__, map(str.isdigit, words)))
    )
    return _THREE_NUMBER_WORDS.search(kinds) is not None


_ASCII_WORD_TABLE = {c: " " for c in range(128) if not chr(c).isalnum()}
_ASCII_WORD_BYTES = bytes(c if chr(c).isalnum() else 32 for c in range(128)) + bytes(128)
_ASCII_NUMBER_WORDS = frozenset(w.encode() for w in _NUMBER_WORDS if w.isascii())
_NUMBER_KIND = dict.fromkeys(_NUMBER_WORDS, "n")
_DIGIT_KIND = (".", "d")
_THREE_NUMBER_WORDS = re.compile("n[nd]*n[nd]*n")


def _run_digits(run: Sequence[re.Match[str]], chars: str) -> str:
    out: list[str] = []
    repeat = 1
    previous: re.Match[str] | None = None
    for match in run:
        word = match.group(0)
        if previous is not None and out and out[-1] != "+":
            gap = chars[previous.end() : match.start()]
            if any(c in gap for c in ",.-/()"):
                out.append(" ")
        previous = match
        if word in _PLUS_WORDS:
            out.append("+")
        elif word in _DOUBLES:
            repeat = _DOUBLES[word]
        elif word.isdigit():
            out.append(word)
            repeat = 1
        else:
            out.append(_NUMBER_WORDS[word] * repeat)
            repeat = 1
    return "".join(out)


def _cjk_digits(match: re.Match[str]) -> str:
    run = match.group(0)
    digits = [_CJK_DIGITS[c] for c in run if c in _CJK_DIGITS]
    if len(digits) < 7:
        return run
    prefix = "+" if run.startswith("加") else ""
    return prefix + "".join(digits)


def normalize(original: str) -> MessageText:
    """Return the client's words in the form the detectors read."""
    original = original[:MAX_CHARS]
    text = _fold(original)
    _fold_confusables(text)
    classes = _classes(text.chars)
    _fold_leet(text, classes)
    if text.origins is not None and classes is not None:
        classes = _classes(text.chars)
    _join_spaced(text, classes)
    _rebuild_emails(text)
    _number_words(text)
    if text.origins is None:
        return MessageText(original, text.chars, range(len(original) + 1))
    return MessageText(original, text.chars, (*text.origins, len(original)), tuple(text.disguised))


def normalize_term(term: str) -> str:
    """Fold a lexicon term like the text it will be matched against."""
    return _fold(term).chars
