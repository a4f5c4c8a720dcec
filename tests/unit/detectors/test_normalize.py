"""The normaliser undoes evasions and still quotes the client's own characters."""

from __future__ import annotations

import pytest

from onplatform.detectors.normalize import normalize

CASES = [
    # (original, a piece of the normalised text, where that piece came from in the original)
    ("Add me on Tele\u200bgram", "telegram", "Tele\u200bgram"),
    ("pay me via рaypal", "paypal", "рaypal"),  # Cyrillic р
    ("send me ur p a y p a l", "paypal", "p a y p a l"),
    ("via P.a.y.o.n.e.e.r direct", "payoneer", "P.a.y.o.n.e.e.r"),
    ("add me on wh@ts@pp", "whatsapp", "wh@ts@pp"),
    ("pay me with p4yp4l", "paypal", "p4yp4l"),
    ("write to john at example dot com", "john@example.com", "john at example dot com"),
    ("laura punto gomez arroba example punto com", "laura.gomez@example.com", None),
    ("邮箱：zhang点wei艾特example点com", "zhang.wei@example.com", None),
    ("call nine one seven five five five one two three four", "9175551234", None),
    ("мой номер: плюс один, пять пять пять, ноль один пять три", "+1 555 0153", None),
    ("رقمي: +٤٤ ٧٧٠٠ ٩٠٠١٢٣", "+44 7700 900123", "+٤٤ ٧٧٠٠ ٩٠٠١٢٣"),
    ("Grüße aus Köln, płacę przez", "grusse aus koln, placE".lower(), None),
    ("оплaта", "оплата", "оплaта"),  # Latin a inside a Cyrillic word goes the other way
    ("pay me on R е v o l u t", "revolut", "R е v o l u t"),  # a spaced Cyrillic е
    ("т е л е г р а м", "телеграм", "т е л е г р а м"),  # spaced Cyrillic stays Cyrillic
    ("нᴀᴨиɯиᴛᴇ в личку", "напишите", "нᴀᴨиɯиᴛᴇ"),  # small capitals and a turned m
    ("ᴡʜᴀᴛsᴀᴘᴘ me", "whatsapp", "ᴡʜᴀᴛsᴀᴘᴘ"),
    ("ᴄᴏɴᴛᴀᴄᴛ ᴍᴇ ᴏɴ ᴛᴇʟᴇɢʀᴀᴍ", "contact me on telegram", None),  # ɴ stays n in Latin
    ("пpoфuт каждый день", "профит", "пpoфuт"),  # Latin u and o inside a Cyrillic word
    ("доход oт 300 в день", "от 300", "oт 300"),  # look-alikes only: the text is Russian
    ("Write me on Теlеgram now", "telegram", "Теlеgram"),  # l and g have no Cyrillic twin
    ("pay me in cмc please", "cmc", "cмc"),  # look-alikes only, in English text: Latin
    ("привет!ищу людей", "привет!ищу", "привет!ищу"),  # no leetspeak between Cyrillic words
]


@pytest.mark.parametrize(("original", "wanted", "source"), CASES)
def test_evasions_are_undone_and_mapped_back(
    original: str, wanted: str, source: str | None
) -> None:
    """Each evasion reads plainly after normalising, and its evidence is the original text."""
    text = normalize(original)
    assert len(text.offsets) == len(text.normalized) + 1
    start = text.normalized.find(wanted)
    assert start >= 0, text.normalized
    span = text.span(start, start + len(wanted))
    if source is not None:
        assert span.text == source
    assert original[span.start : span.end] == span.text


DISGUISES = [  # (original, the disguised piece)
    *[(original, source) for original, _, source in CASES[:7]],
    ("laura punto gomez arroba example punto com", "arroba"),
    ("call nine one seven five five five one two three four", "nine one seven"),
    ("pay\xadpal please", "\xad"),
]


@pytest.mark.parametrize(("original", "source"), DISGUISES)
def test_an_evasion_is_marked_disguised(original: str, source: str) -> None:
    """The characters an evasion rewrote are listed, on the original text."""
    text = normalize(original)
    start = original.find(source)
    assert any(a < start + len(source) and start < b for a, b in text.disguised), text.disguised


@pytest.mark.parametrize(
    "original",
    [
        "PayPal and Payoneer",
        "Grüße aus Köln",
        "mail me: dana.k@example.com",
        "Ｆｕｌｌ width",
        "رقمي: +٤٤ ٧٧٠٠ ٩٠٠١٢٣",  # native digits are how the client writes, not a disguise
    ],
)
def test_case_accents_and_plain_addresses_are_not_disguises(original: str) -> None:
    assert normalize(original).disguised == ()


NEAR_MISSES = [
    "Look at the site tomorrow, the com is down",  # "at" and "com" but no address
    "The version is 3.5.1 and covid19 data",
    "I have a b c options",  # three single letters, not a word spelled out
    "one or two pages, maybe three",
]


@pytest.mark.parametrize("original", NEAR_MISSES)
def test_ordinary_text_is_left_alone(original: str) -> None:
    """Plain text only changes case."""
    assert normalize(original).normalized == original.lower()


def test_plain_text_keeps_offsets_without_a_list() -> None:
    """Nothing moved: the offsets are a range, cheap to build."""
    text = normalize("Hello there")
    assert isinstance(text.offsets, range)
    assert text.span(6, 11).text == "there"


def test_long_input_is_cut() -> None:
    """Work stays bounded on a huge message."""
    assert len(normalize("a" * 50_000).normalized) == 20_000


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("Here is a case study at github.com/example/kyc-demo, have a look.", None),
        ("My portfolio is at behance.net if you want samples.", None),
        ("The demo is live at example.com now.", None),
        ("write me: nina at example dot com", "nina@example.com"),
        ("reach me at nina.k at example.com", "nina.k@example.com"),
    ],
)
def test_at_before_a_site_is_an_address_only_after_a_name(text: str, address: str | None) -> None:
    """ "<name> at <domain>" is a spelled-out address; "study at github.com/..." and
    "portfolio is at behance.net" are sentences about a site."""
    normalized = normalize(text).normalized
    if address is None:
        assert "@" not in normalized
    else:
        assert address in normalized
