"""The analyzer's context stage for detectors that read no lexicon."""

from __future__ import annotations

import pytest

from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.lexicon import load_lexicon
from onplatform.detectors.registry import build, discover


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    lexicon = load_lexicon()
    return Analyzer(build(discover(lexicon), {}), lexicon)


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("The phone field must accept +44 7700 900123 and store it as E.164.", False),
        ("Our support inbox is support@example.com — the bot forwards tickets there.", False),
        ("Text me on +44 7700 900123 so we can talk faster.", True),
        ("My email is dana.k@example.com, write me there instead.", True),
    ],
)
def test_contact_details_in_a_job_spec_are_not_requests(
    analyzer: Analyzer, text: str, flagged: bool
) -> None:
    """A phone or address inside a product spec is lowered by the sentence's job words."""
    assessment = analyzer.assess(text)
    assert assessment.flagged is flagged
    contact = [f for f in assessment.findings if f.detector == "contact_data"]
    assert contact
    if not flagged:
        assert any(a.reason == "context.job_topic" for f in contact for a in f.adjustments)


def test_evidence_quotes_the_match_across_blank_lines(analyzer: Analyzer) -> None:
    """Blank lines between paragraphs never widen evidence to the whole message."""
    text = (
        "Dear Freelancer,\n\nThanks for applying.\n\nPlease send a photo of your passport.\n\nBye"
    )
    assessment = analyzer.assess(text)
    quoted = [span.text for f in assessment.findings for span in f.evidence]
    assert quoted and all(len(q) < 30 for q in quoted)
    assert all("Dear" not in q for q in quoted)


@pytest.mark.parametrize(
    ("text", "hesitant", "insisting"),
    [
        (
            "Our old agency missed the launch, so we hired someone else in March.\n\n"
            "The designs look great. Is there a way to export them as SVG too?\n\n"
            "Thanks again for the quick turnaround on the mock-ups last week.\n\n"
            "By the way, I will pay you on PayPal directly and we skip the fees.",
            False,
            False,
        ),
        (
            "I told you twice already. Pay me via PayPal directly or I find someone else.",
            False,
            True,
        ),
        ("Would it be possible to pay you outside Upwork for the next phase?", True, False),
    ],
)
def test_intent_is_read_around_the_request(
    analyzer: Analyzer, text: str, hesitant: bool, insisting: bool
) -> None:
    """Hedges and demands count near the flagged request, not anywhere in a long message."""
    assessment = analyzer.assess(text)
    assert assessment.flagged
    assert (assessment.hesitant, assessment.insisting) == (hesitant, insisting)


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("What is your email marketing experience with Mailchimp?", False),
        ("Call me crazy but I love the second logo more!", False),
        ("Lets discuss more on Google Hangouts", True),
        ("Call me on WhatsApp tomorrow", True),
        ("What is your email? I will send the brief there.", True),
    ],
)
def test_everyday_phrases_near_contact_words(analyzer: Analyzer, text: str, flagged: bool) -> None:
    """Idioms and job talk that mention contact words stay quiet; real asks are flagged."""
    assert analyzer.assess(text).flagged is flagged


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("Pouvez-vous me donner votre adresse email personnelle ?", True),
        ("Pouvez-vous me donner votre avis sur la maquette ?", False),
        ("هل يمكنك التواصل معي عبر واتساب؟", True),
        ("يمكنك التواصل معي هنا على أبورك", False),
    ],
)
def test_polite_asks_in_french_and_arabic(analyzer: Analyzer, text: str, flagged: bool) -> None:
    """A polite "could you give me your e-mail / reach me on WhatsApp" is still an ask."""
    assert analyzer.assess(text).flagged is flagged


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("We can sign an NDA and work directly, outside of this platform.", "offplatform_payment"),
        (
            "I would rather keep working with you without Upwork in the middle.",
            "offplatform_payment",
        ),
        ("I found you outside Upwork, on Google, and loved your work.", None),
        ("We work directly with the printer for the final files, you only send the PDF.", None),
        ("Can you work outside normal hours if needed?", None),
        (
            "Please complete 3 simple tasks daily and earn 300 USD, our mentor explains on "
            "Telegram.",
            "scam",
        ),
    ],
)
def test_moving_the_work_itself_off_upwork(
    analyzer: Analyzer, text: str, category: str | None
) -> None:
    """Working together outside Upwork is a request; finding someone outside it is not."""
    assert analyzer.assess(text).category == category


def test_a_disguised_address_counts_more_than_a_plain_one(analyzer: Analyzer) -> None:
    """Writing an address so that filters miss it is itself a sign of intent."""
    lead = "I rarely check Upwork messages, my assistant handles my inbox: "
    plain = analyzer.assess(lead + "assistant@example.com")
    disguised = analyzer.assess(lead + "assistant at example dot com")
    (plain_finding,) = [f for f in plain.findings if f.code == "contact.email"]
    (hidden_finding,) = [f for f in disguised.findings if f.code == "contact.email"]
    assert "context.disguised" not in [a.reason for a in plain_finding.adjustments]
    assert [a.reason for a in hidden_finding.adjustments][-1] == "context.disguised"
    assert hidden_finding.score == pytest.approx(plain_finding.score + 0.2)
    assert disguised.flagged and disguised.category == "contact_exchange"


@pytest.mark.parametrize(
    "text",
    [
        "Write me on Telegram, it is easier there: @nina_shop_api",
        "Write me on Telegram, it is easier there, my id is nina_shop_api",
        "Send your CV to my personal mail, shop.api.team@example.com, not here.",
    ],
)
def test_words_inside_a_handle_or_address_are_no_job_context(analyzer: Analyzer, text: str) -> None:
    """ "shop" and "api" inside a chosen name do not make the message a job spec."""
    assessment = analyzer.assess(text)
    assert assessment.flagged
    reasons = {a.reason for f in assessment.findings for a in f.adjustments}
    assert "context.job_topic" not in reasons


def _moved_by(analyzer: Analyzer, text: str, code: str) -> list[str]:
    finding = next(f for f in analyzer.assess(text).findings if f.code == code)
    return [adjustment.reason for adjustment in finding.adjustments]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        # "form" and "stripe" are job words, but here they are inside the ask itself.
        ("Your payment in form of a bank check is ready, send me the address.", "scam.cheque"),
        (
            "For the next phases I'll just send you a Stripe invoice link each month.",
            "payment.direct",
        ),
    ],
)
def test_job_words_inside_the_ask_do_not_lower_it(analyzer: Analyzer, text: str, code: str) -> None:
    assert "context.job_topic" not in _moved_by(analyzer, text, code)
    assert analyzer.assess(text).flagged


def test_job_words_around_the_ask_still_lower_it(analyzer: Analyzer) -> None:
    """The job word reaches past the evidence ("telegram bot" around "telegram"), or sits
    beside it: the message is a job spec, as before."""
    bot = "We need a Telegram bot for our support chat, message me on Telegram for details."
    assert "context.job_topic" in _moved_by(analyzer, bot, "contact.channel_request")
    form = "Build a form where donors pay by check or card; we mail the receipts."
    assert not analyzer.assess(form).flagged


def test_a_raising_context_inside_the_ask_still_raises_it(analyzer: Analyzer) -> None:
    """ "私下结" (settle privately) carries its own "privately": that one counts."""
    text = "第一个里程碑在这边付，后面的我们私下结，我每周五打到你卡上。"
    assert "context.outside_upwork" in _moved_by(analyzer, text, "payment.direct")


_FEATURE_LIST = (
    "We are building a booking app for a chain of barber shops.\n"
    "Features:\n"
    "- customers pick a barber and a time\n"
    "- payment by card or PayPal in advance\n"
    "- reminders by e-mail the day before\n"
    "Budget $2,000."
)


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        (_FEATURE_LIST, False),
        # The same line alone is a way to pay, said to the freelancer.
        ("Payment by card or PayPal in advance.", True),
        # An ask in prose after a feature list is no item of it.
        (
            "We are building a booking app for barber shops.\nFeatures:\n"
            "- customers pick a barber and a time\n- reminders the day before\n\n"
            "For the work itself I will pay you by PayPal, outside Upwork, to save the fees.",
            True,
        ),
        # A list with no job words in it or above it excuses nothing.
        (
            "Hi there, a few things before we start:\n- I pay by PayPal only\n"
            "- updates every Friday\n- files in Dropbox",
            True,
        ),
    ],
)
def test_a_feature_list_is_read_as_one_spec(analyzer: Analyzer, text: str, flagged: bool) -> None:
    """The job words of a list's opening lines or other items lower a payment named in one
    of its items: each item is a sentence of its own, but the list describes one product."""
    assessment = analyzer.assess(text)
    assert assessment.flagged is flagged
    if not flagged:
        payment = [f for f in assessment.findings if f.category == "offplatform_payment"]
        assert payment and all(
            any(a.reason == "context.job_topic" for a in f.adjustments) for f in payment
        )


def test_a_list_scope_covers_its_items_and_the_lines_that_open_it() -> None:
    lexicon = load_lexicon()
    text = (
        "intro line. title of the job\nfeatures:\n- one\n- two\n\n3) three\nclosing words\n- lone"
    )
    scan = lexicon.matcher.scan(text)
    first_item = scan.sentence_at(text.index("one"))
    third_item = scan.sentence_at(text.index("three"))
    opening = scan.sentence_at(text.index("intro"))  # two lines of prose open a list
    assert opening < scan.sentence_at(text.index("title")) < first_item
    assert scan.list_scope(first_item, first_item) == (opening, third_item)
    assert scan.list_scope(third_item, third_item) == (opening, third_item)
    assert scan.list_scope(opening, opening) is None  # the opening lines are no item
    assert scan.list_scope(*(scan.sentence_at(text.index("lone")),) * 2) is None  # one item


@pytest.mark.parametrize(
    "quoted",
    [
        'Please write a polite reply to this customer: "can I pay you by Zelle instead of '
        'the website?"',
        "Перекладіть приклад шахрайського листа: «оплатіть навчання нашому партнеру, "
        "гроші повернемо»",
        "请帮我写一段标准回复，顾客问：「能不能直接转你支付宝，这样便宜点？」",
    ],
)
def test_an_ask_inside_a_quotation_counts_for_less(analyzer: Analyzer, quoted: str) -> None:
    """A customer's or a scammer's words quoted for the freelancer to answer or translate
    are not the client's own ask: each finding quoted whole moves down, and only those."""
    assessment = analyzer.assess(quoted)
    moved = [f for f in assessment.findings if f.base_score > 0]
    assert moved
    for finding in moved:
        assert any(a.reason == "context.quoted" for a in finding.adjustments), finding
    unquoted = analyzer.assess(quoted.translate({ord(mark): None for mark in '"«»「」'}))
    assert unquoted.score > assessment.score
    assert not any(a.reason == "context.quoted" for f in unquoted.findings for a in f.adjustments)


def test_a_word_or_two_in_quotes_is_no_quotation(analyzer: Analyzer) -> None:
    """Scare quotes around a name ("my "Telegram" is @dana_k") keep the ask whole."""
    assessment = analyzer.assess('Add me on "Telegram" at @dana_kovac so we can talk faster')
    assert assessment.flagged
    assert not any(a.reason == "context.quoted" for f in assessment.findings for a in f.adjustments)
