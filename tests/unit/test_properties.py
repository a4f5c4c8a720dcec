"""Property tests: the parser and the normaliser survive any input, within a time bound.

Time is CPU time of this process (ITIMER_PROF), so a busy machine does not
make the bounds flaky; the same timer interrupts a runaway regex, so a
catastrophic case costs its bound, not minutes.
"""

from __future__ import annotations

import contextlib
import gc
import random
import signal
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from types import FrameType
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from onplatform.daemon.errors import MessageError
from onplatform.daemon.notification import Notification, parse_notification
from onplatform.detectors.base import MessageText
from onplatform.detectors.normalize import normalize
from tests.support.mail import client_mail

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "mail").glob("*.eml"))
PARSE_LIMIT = 2.0
NORMALIZE_LIMIT = 0.5
T = TypeVar("T")


class TooSlow(BaseException):  # not an Exception: parse_notification must not swallow it
    """The CPU-time bound of one call ran out."""


@contextlib.contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise TooSlow(f"more than {seconds}s of CPU")

    previous = signal.signal(signal.SIGPROF, expired)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def timed(fn: Callable[[], T], limit: float, what: str) -> tuple[T, float]:
    """Run ``fn`` under a CPU bound; fail the test with ``what`` when it runs out.

    The collector is paused meanwhile: a full collection of what other tests left in
    this process (lexicons, models) can take half a second, and is not ``fn``'s cost.
    """
    gc.collect()
    gc.disable()
    started = time.process_time()
    try:
        with cpu_limit(limit * 1.5):
            result = fn()
    except TooSlow:
        pytest.fail(f"{what}: still running after {limit * 1.5:.2f}s of CPU (bound {limit}s)")
    finally:
        gc.enable()
    spent = time.process_time() - started
    assert spent < limit, f"{what}: {spent:.2f}s of CPU (bound {limit}s)"
    return result, spent


# -- parse_notification -------------------------------------------------------------
HEADER_FIELDS = ("subject", "sender_address", "sender_name", "reply_address", "source_key")


def parse_or_error(raw: bytes, what: str) -> Notification | None:
    """parse_notification within its bound; MessageError is the only error allowed."""

    def run() -> Notification | None:
        try:
            return parse_notification(raw)
        except MessageError:
            return None

    notification, _ = timed(run, PARSE_LIMIT, what)
    if notification is not None:
        # These end up in draft headers: no line break may survive parsing.
        for name in HEADER_FIELDS:
            value = getattr(notification, name)
            assert "\r" not in value and "\n" not in value, f"{what}: {name}={value!r}"
        for name in ("client_name", "room_address", "message_id"):
            value = getattr(notification, name)
            assert value is None or ("\r" not in value and "\n" not in value), (name, value)
    return notification


# Found by the mutated-fixture property: email.errors.CharsetError and HeaderParseError
# escaped parse_notification (and crashed every poll) before 90b40ed.
BROKEN_ENCODED_WORDS = [
    pytest.param(
        b"From: =?\xfftf-8?q?Maria?= <room_1@upwork.com>\r\n\r\nhi\r\n", id="charset_not_ascii"
    ),
    pytest.param(
        b"From: =?utf-8?b?QUJDR A?= <room_1@upwork.com>\r\n\r\nhi\r\n", id="base64_broken"
    ),
    pytest.param(
        b"Reply-To: =?\xff?q?x?= <room_1@upwork.com>\r\nFrom: A <a@upwork.com>\r\n\r\nhi\r\n",
        id="reply_to_charset_not_ascii",
    ),
]


@pytest.mark.parametrize("raw", BROKEN_ENCODED_WORDS)
def test_parse_notification_broken_encoded_word(raw: bytes) -> None:
    """An RFC 2047 word in From/Reply-To with a non-ASCII charset name or broken base64
    gives a Notification or a MessageError, never an email.errors exception."""
    with contextlib.suppress(MessageError):
        parse_notification(raw)


def split_mail(raw: bytes) -> tuple[list[bytes], bytes]:
    """Header lines (with their line ends) and the body of a raw mail."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(separator)
        if found:
            return head.splitlines(keepends=True), body
    return raw.splitlines(keepends=True), b""


def nest(raw: bytes, depth: int, *, close: bool) -> bytes:
    """The mail's body wrapped in ``depth`` levels of multipart/mixed."""
    headers, body = split_mail(raw)
    kept = [
        line
        for line in headers
        if not line.lower().startswith((b"content-type", b"content-transfer", b"mime-version"))
        and not line[:1].isspace()
    ]
    inner = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    for level in range(depth):
        boundary = f"nest-{level}".encode()
        end = b"\r\n--" + boundary + b"--\r\n" if close else b""
        inner = (
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--'
            + boundary + b"\r\n" + inner + end
        )  # fmt: skip
    return b"".join(kept) + b"MIME-Version: 1.0\r\n" + inner


@st.composite
def mutated_fixture(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from(FIXTURES))
    raw = path.read_bytes()
    steps = draw(
        st.lists(st.sampled_from(["truncate", "flip", "dup_headers", "nest", "splice"]), max_size=3)
    )
    for step in steps:
        if step == "truncate" and raw:
            raw = raw[: draw(st.integers(0, len(raw)))]
        elif step == "flip" and raw:
            data = bytearray(raw)
            for _ in range(draw(st.integers(1, 16))):
                index = draw(st.integers(0, len(data) - 1))
                data[index] ^= draw(st.integers(1, 255))
            raw = bytes(data)
        elif step == "dup_headers":
            headers, body = split_mail(raw)
            if headers:
                chosen = draw(st.lists(st.integers(0, len(headers) - 1), min_size=1, max_size=4))
                times = draw(st.integers(2, 60))
                extra = [headers[i] for i in chosen] * times
                raw = b"".join(headers + extra) + b"\r\n" + body
        elif step == "nest":
            raw = nest(raw, draw(st.integers(1, 50)), close=draw(st.booleans()))
        elif step == "splice":
            at = draw(st.integers(0, len(raw)))
            raw = raw[:at] + draw(st.binary(max_size=64)) + raw[at:]
    return f"{path.name} after {steps}", raw


@settings(max_examples=250, deadline=None, database=None)
@given(st.binary(max_size=4096))
@example(b"")
@example(b"\r\n\r\n")
@example(b"From: <room_1@upwork.com>\r\n\r\n\xff\xfe\x00")
@example(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x--")
def test_parse_notification_arbitrary_bytes(raw: bytes) -> None:
    """Any bytes at all give a Notification or a MessageError, within 2 s."""
    parse_or_error(raw, f"arbitrary bytes {raw[:60]!r}")


@settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated_fixture())
def test_parse_notification_mutated_fixtures(case: tuple[str, bytes]) -> None:
    """Fixtures truncated, bit-flipped, with repeated headers, nested or spliced stay
    a Notification or a MessageError, within 2 s."""
    what, raw = case
    parse_or_error(raw, what)


@pytest.mark.parametrize("close", [True, False], ids=["closed", "unclosed"])
@pytest.mark.parametrize("name", ["client_paypal_plain.eml", "client_wire_html_only.eml"])
def test_parse_notification_multipart_nested_50_levels(name: str, close: bool) -> None:
    """A body 50 multiparts deep is still parsed (or refused) within the bound."""
    raw = nest((FIXTURES[0].parent / name).read_bytes(), 50, close=close)
    parse_or_error(raw, f"{name} nested 50 levels")


def _big_text(shape: str) -> str:
    rng = random.Random(shape)
    if shape == "one_line":
        return "x" * 1_000_000
    if shape == "many_lines":
        return "\n".join(f"line {i} of the brief, pay on Upwork" for i in range(30_000))
    if shape == "words":
        return " ".join(
            rng.choice(["pay", "PayPal", "@", "at", "dot", "1", "a"]) for _ in range(350_000)
        )
    raise AssertionError(shape)


@pytest.mark.parametrize("html", [False, True], ids=["plain", "html"])
@pytest.mark.parametrize("shape", ["one_line", "many_lines", "words"])
def test_parse_notification_one_megabyte_body(shape: str, html: bool) -> None:
    """A 1 MB client message is parsed within the bound and its words are capped."""
    raw = client_mail(4242, "Big Sender", _big_text(shape), "<big@upwork.test>", html=html)
    assert len(raw) >= 1_000_000
    notification = parse_or_error(raw, f"1 MB {shape} html={html}")
    assert notification is not None and len(notification.client_words) <= 20_000


def test_parse_notification_one_megabyte_8bit_body() -> None:
    """1 MB of 8-bit UTF-8 (no transfer encoding) is parsed within the bound."""
    message = EmailMessage(policy=SMTP)
    message["From"] = "Big Sender <room_4243@upwork.com>"
    message["Message-ID"] = "<big8@upwork.test>"
    message["Subject"] = "New message"
    message.set_content("é—ü " * 150_000, cte="8bit")
    raw = message.as_bytes()
    assert len(raw) >= 1_000_000
    assert parse_or_error(raw, "1 MB 8bit") is not None


# -- normalize ---------------------------------------------------------------------
def check_offsets(original: str, result: MessageText) -> None:
    assert len(result.offsets) == len(result.normalized) + 1
    cut = original[: len(result.original)]
    assert result.original == cut, "original must be the input (cut at MAX_CHARS)"
    bad = [o for o in result.offsets if not 0 <= o <= len(result.original)]
    assert not bad, f"offsets out of [0, {len(result.original)}]: {bad[:5]}"


def normalize_within(text: str, limit: float, what: str) -> MessageText:
    result, _ = timed(lambda: normalize(text), limit, what)
    check_offsets(text, result)
    return result


# Pieces that the normaliser's steps react to: spaced letters, at/dot words in
# several languages, leet, number words, look-alike letters, invisible characters.
TOKENS = (
    "a", "b", "x", " ", "  ", ".", "-", "_", "*", "/", ",", "·", "\n", "\t", "(", ")", "[", "]",
    "<", ">", "{", "}", "at", "dot", " at ", " dot ", "arroba", "punto", "собака", "точка",
    "gmail", "com", "one", "two", "nine", "oh", "double", "plus", "1", "0", "4", "+",
    "$", "!", "|", "a1", "p4y", "а", "о", "р", "α", "ο", "一", "二", "九", "\u200b",
    "\u200d", "\ufeff", "\u00ad", "ｐａｙ", "é", "ß", "İ", "ﬁ", "😀", "'", "’",
)  # fmt: skip
TRAP_TOKENS = ("@", "@ ", " @ ", "[@]", "(@)", "a@", "@a")


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.one_of(
        st.text(max_size=1500),
        st.lists(st.sampled_from(TOKENS + TRAP_TOKENS), max_size=300).map("".join),
    )
)
@example("")
@example("\u200b" * 50)
@example("ﬁ" * 50 + "@")
@example("İ" * 100)
@example("ß at ß dot com")
def test_normalize_never_raises_and_maps_every_character(text: str) -> None:
    """Any text: no exception, len(normalized)+1 offsets, each within the original."""
    normalize_within(text, NORMALIZE_LIMIT, f"normalize({text[:60]!r})")


def fill(unit: str, size: int = 20_000) -> str:
    return (unit * (size // len(unit) + 1))[:size]


ADVERSARIAL: list[object] = [
    pytest.param(fill("a "), id="a_a_a"),
    pytest.param(fill("a a a a x "), id="a_a_a_a_x"),
    pytest.param(fill("p a y p a l "), id="spaced_word"),
    pytest.param(fill("p.a.y.p.a.l "), id="dotted_word"),
    pytest.param(fill("a.") + "aa", id="dotted_then_word"),
    pytest.param("@" * 20_000, id="at_signs"),
    pytest.param(fill("@ "), id="at_signs_spaced"),
    pytest.param(fill("1-2 3.4/5 "), id="digits_separators"),
    pytest.param(fill("+1 (415) 555-0199, "), id="phone_numbers"),
    pytest.param("1" * 20_000, id="digits"),
    pytest.param(fill("one two three four five "), id="number_words"),
    pytest.param(fill("nine, oh. double two - "), id="number_words_separators"),
    pytest.param(fill("一二三四五六七八九 "), id="cjk_digits"),
    pytest.param(fill("at dot "), id="at_dot"),
    pytest.param(fill("x at y dot "), id="x_at_y_dot"),
    pytest.param(fill("name at mail dot com "), id="name_at_mail_dot_com"),
    pytest.param(fill("a [at] b (dot) "), id="bracketed_at_dot"),
    pytest.param(fill("a dot b dot c dot "), id="dot_chain"),
    pytest.param(fill(" at at "), id="at_at"),
    pytest.param(fill("a\u200b"), id="zero_width_between_letters"),
    pytest.param("\u200b" * 20_000, id="zero_width_only"),
    pytest.param(fill("p\u200ba\u200by "), id="zero_width_word"),
    pytest.param(fill("pаypаl "), id="cyrillic_lookalikes"),
    pytest.param(fill("p4yp4l "), id="leet_words"),
    pytest.param("a" * 20_000, id="one_long_word"),
    pytest.param(fill("a@b."), id="addresses_glued"),
    # Found by this file: ~10 s of CPU each in the quadratic _SPACED_AT and _LEET_HINT
    # regexes of detectors/normalize.py, before their fix.
    pytest.param("a" * 19_999 + "@", id="letters_then_at"),
    pytest.param(fill("a@"), id="a_at_repeated"),
    pytest.param(fill("a\u200b@\u200b"), id="zero_width_at_repeated"),
    pytest.param("x" * 10_000 + " @ " + "y" * 9_000, id="word_at_word"),
    pytest.param("😀 " + "1" * 19_990, id="emoji_then_digits"),
    pytest.param("·" + fill("+@0", 19_990) + " .x", id="middle_dot_then_leet_run"),
]


@pytest.mark.parametrize("text", ADVERSARIAL)
def test_normalize_fast_on_adversarial_20kb(text: str) -> None:
    """20 KB built to stress each step is normalised in under 0.5 s of CPU."""
    normalize_within(text, NORMALIZE_LIMIT, f"normalize({text[:24]!r}... {len(text)} chars)")


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # a slow case is reported, not shrunk for minutes
)
@given(
    prefix=st.sampled_from(TOKENS + TRAP_TOKENS),
    unit=st.lists(st.sampled_from(TOKENS + TRAP_TOKENS), min_size=1, max_size=6).map("".join),
    suffix=st.lists(st.sampled_from(TOKENS + TRAP_TOKENS), max_size=3).map("".join),
)
def test_normalize_fast_on_generated_20kb(prefix: str, unit: str, suffix: str) -> None:
    """A token pattern repeated to 20 KB, with odd ends, is normalised in under 0.5 s."""
    text = prefix + fill(unit, 20_000 - len(prefix) - len(suffix)) + suffix
    assert len(text) == 20_000
    normalize_within(text, NORMALIZE_LIMIT, f"normalize({prefix!r} + {unit!r}* + {suffix!r})")
