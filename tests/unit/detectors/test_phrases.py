"""Rules over lexicon groups: positives, negatives and near misses side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.base import NEGATED
from onplatform.detectors.lexicon import load_lexicon
from onplatform.detectors.matcher import Hit
from onplatform.detectors.phrases import NEGATION_GROUP, _negated
from onplatform.detectors.registry import build, discover

CASES = [
    # (text, expected category or None, a code that must be among the findings or None)
    ("I'd rather pay you directly than through Upwork.", "offplatform_payment", "payment.direct"),
    (
        "Let's skip Upwork, I pay you by bank transfer and we both save the fees.",
        "offplatform_payment",
        "payment.fee_avoidance",
    ),
    ("Add me on Telegram so we can talk there.", "contact_exchange", "contact.channel_request"),
    ("My team is not on Upwork, so we continue elsewhere.", "contact_exchange", "contact.indirect"),
    ("Please install AnyDesk so I can set up the project.", "scam", "scam.remote_access"),
    ("We will mail you a check, deposit it and send back the rest.", "scam", "scam.cheque"),
    ("The interview with our HR will be on Telegram.", "scam", "scam.chat_interview"),
    ("paypal?", "offplatform_payment", "payment.bare_channel"),
    ("discord? nova_builds. faster there", "contact_exchange", "contact.bare_channel"),
    ("Why don't we pay outside Upwork, it is cheaper.", "offplatform_payment", None),
    ("Please don't share your personal email or phone here.", None, None),  # forbidden, not asked
    ("We never work outside Upwork, payment goes through Upwork escrow.", None, None),
    # Scams as freelancers quote them: the telling part is a plain business statement.
    ("Are you the owner? Do you accept credit cards? I need a logo.", "scam", "scam.card_opener"),
    (
        "My private consultant has the text content and will send it with the payment.",
        "scam",
        "scam.consultant_content",
    ),
    ("Payable by check.", "scam", "scam.cheque"),
    (
        "Create an Upwork account with your info and lend me it, I share my income with you.",
        "scam",
        "scam.account_rental",
    ),
    ("Parcels of smartphones come to you, repackage them and ship on.", "scam", None),
    (
        "We use an independent escrow company for big contracts, not the platform.",
        "offplatform_payment",
        "payment.direct",
    ),
    # A lure and a move to private chat: the recruiting pitch of task schemes.
    ("Удалённая занятость, от 200$ в день. Пишите + в л.с.", "scam", "scam.lure_chat"),
    ("Earn $300 per day from home, no skills. DM me for details", "scam", "scam.lure_chat"),
    (
        "Before the interview, clone our repo and run npm install && npm start on your machine.",
        "scam",
        "scam.run_code_test",
    ),
    ("Перед собеседованием склонируйте репозиторий и запустите локально.", "scam", None),
    ("I'm not asking again. Payoneer or nothing, decide now.", "offplatform_payment", None),
    # Asking how to reach the freelancer is asking for a channel outside the room.
    ("Как с вами можно связаться? Есть заказ.", "contact_exchange", "contact.indirect"),
    ("怎么联系？想付费定制功能", "contact_exchange", "contact.indirect"),
    ("能加个微信请你开发吗？", "contact_exchange", "contact.channel_request"),  # 开发: no excuse
    # "？" ends a sentence though no space follows it: "Python" is the job, not the ask.
    ("有個Python爬蟲的案子？可以加微信詳談嗎？", "contact_exchange", "contact.channel_request"),
    # Session 14: a "private" consultant who holds the content, pay stated in crypto, a
    # part-time pitch that asks for a reply, and the short asks of broken English.
    (
        "I need a 5-page site. My private project consultant will send you the text and "
        "logos, email him first.",
        "scam",
        "scam.private_consultant",
    ),
    ("Salary is paid in USDT every month.", "offplatform_payment", "payment.crypto_salary"),
    ("与海外公司签合同，USDT结算。", "offplatform_payment", "payment.crypto_salary"),
    (
        "Part-time job, stable income from $120 a day, only a phone needed. Reply YES.",
        "scam",
        "scam.lure_invite",
    ),
    ("you have whats?", "contact_exchange", "contact.bare_channel"),
    ("email id send pls", "contact_exchange", None),
    ("Купите ноутбук в нашем магазине, стоимость вернем с первой зарплатой.", "scam", None),
    (
        "Cześć, szukasz pracy? Wystarczy telefon, zarobki od 300 zł dziennie. Napisz na priv.",
        "scam",
        "scam.lure_invite",
    ),
    # near misses: the same words about the work itself
    ("Отвечать клиентам нашего магазина в WhatsApp, почасовой контракт на Upwork.", None, None),
    ("Interview on Zoom through Upwork, no free test tasks.", None, None),
    ("Собеседование в Zoom через Upwork, без бесплатных тестовых заданий.", None, None),
    ("We build a USDT payroll feature for crypto-native companies.", None, None),
    ("Reply yes if the milestone date works for you.", None, None),
    (
        "After the contract starts, clone the repo, run npm install and fix the failing test.",
        None,
        None,
    ),
    ("Our Telegram channel admin needs to post daily or no one reads it.", None, None),
    ("You can contact me here in Upwork messages any time.", None, None),
    ("Опыт не важен, всему обучим. Оплата почасовая через Upwork.", None, None),
    ("We run a shop: the checkout must accept credit cards and PayPal.", None, None),
    ("Our project consultant will review your designs in this Upwork room.", None, None),
    ("We are an escrow company and need our homepage rewritten, 600 words.", None, None),
    ("Stripe or PayPal?", None, None),
    ("Telegram bot?", None, None),
    ("We take PayPal and cards in the shop, the checkout page needs both.", None, None),
    ("We need a PayPal checkout integrated into our Shopify store.", None, None),
    ("Build a Telegram bot that posts our orders to a channel.", None, None),
    ("I will pay the milestone through Upwork on Friday.", None, None),
    ("Thanks, the design looks great, see you tomorrow.", None, None),
]


@pytest.mark.parametrize(("text", "category", "code"), CASES)
def test_rules(analyzer: Analyzer, text: str, category: str | None, code: str | None) -> None:
    """A request is flagged in its category with its rule; talk about the work is not."""
    result = analyzer.assess(text)
    assert result.category == category, (result.codes, result.score)
    if code is not None:
        assert code in result.codes


def test_evidence_is_quoted_from_the_original(analyzer: Analyzer) -> None:
    """Evidence of an obfuscated word shows the client's own spelling."""
    text = "ok so just send me ur p a y p a l and I'll pay the rest today"
    result = analyzer.assess(text)
    assert result.flagged
    quoted = [span.text for f in result.findings for span in f.evidence]
    assert "p a y p a l" in quoted
    for finding in result.findings:
        for span in finding.evidence:
            assert text[span.start : span.end] == span.text


def test_context_lowers_the_score_and_says_why(analyzer: Analyzer) -> None:
    """A payment word inside a job about payments is marked down, with the reason recorded."""
    result = analyzer.assess("Integrate PayPal payouts so our app can pay sellers.")
    reasons = {a.reason for f in result.findings for a in f.adjustments}
    assert not result.flagged
    assert "context.job_topic" in reasons


@pytest.mark.parametrize(
    ("text", "hesitant", "insisting"),
    [
        ("Would it be possible to pay you outside Upwork?", True, False),
        ("I told you twice: pay via PayPal or I find someone else.", False, True),
        ("Send me your WhatsApp number.", False, False),
        ("Una consulta: ¿habría forma de pagarte por Mercado Pago?", True, False),
        ("Ek baat puchu, agar payment UPI se kar du toh chalega kya?", True, False),
    ],
)
def test_intent(analyzer: Analyzer, text: str, hesitant: bool, insisting: bool) -> None:
    """A tentative question is hesitant, a repeated demand is insisting, never both."""
    result = analyzer.assess(text)
    assert result.flagged
    assert (result.hesitant, result.insisting) == (hesitant, insisting)


class _Negations:
    """Just what `_negated` reads of a scan: the hits of the negation group."""

    def __init__(self, *hits: Hit) -> None:
        self.hits = list(hits)

    def get_in_sentences(self, name: str, first: int, last: int) -> list[Hit]:
        hits = self.hits if name == NEGATION_GROUP else []
        return [hit for hit in hits if first <= hit.sentence <= last]


@pytest.mark.parametrize(
    ("negation", "asked", "negated"),
    [
        (Hit(1, 3, 0), [Hit(2, 4, 0), Hit(6, 7, 0)], True),  # "don't [share] your email"
        (Hit(5, 7, 0), [Hit(2, 3, 0), Hit(6, 7, 0)], True),  # verb last: "... paylaşmayın"
        (Hit(0, 2, 0), [Hit(5, 6, 0), Hit(8, 9, 0)], True),  # "don't ask me to [pay]": 3 between
        (Hit(0, 2, 0), [Hit(6, 7, 0), Hit(8, 9, 0)], False),  # 4 words between: too far
        (Hit(0, 2, 0), [Hit(3, 4, 1), Hit(5, 6, 1)], False),  # the next sentence
        (Hit(9, 11, 0), [Hit(2, 3, 0), Hit(5, 6, 0)], False),  # after the request
    ],
)
def test_a_negation_forbids_only_the_request_it_governs(
    negation: Hit, asked: list[Hit], negated: bool
) -> None:
    assert _negated(asked, _Negations(negation)) is negated  # type: ignore[arg-type]
    assert _negated(asked, _Negations()) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "Please don't share your personal email or phone here, Upwork flags it.",
        "Please don't send me your p4yp4l or any other details, keep it on Upwork.",
    ],
)
def test_a_forbidden_request_is_shown_at_zero(analyzer: Analyzer, text: str) -> None:
    """--explain shows the rule a negation switched off, at 0 and with the reason."""
    result = analyzer.assess(text)
    assert not result.flagged
    negated = [f for f in result.findings if any(a.reason == NEGATED for a in f.adjustments)]
    assert negated
    assert all(f.score == 0.0 for f in negated)


@pytest.mark.parametrize(
    ("window", "categories", "flagged"),
    [(0, "[]", True), (1, "[]", False), (1, '["scam"]', True), (1, '["contact_exchange"]', False)],
)
def test_a_context_reaches_its_window_and_only_its_categories(
    tmp_path: Path, window: int, categories: str, flagged: bool
) -> None:
    """A disclaimer one sentence after the request ("...on WhatsApp. That is not us."),
    and one that excuses only some kinds of request."""
    extra = tmp_path / "extra.toml"
    extra.write_text(
        'language = "xx"\n[groups]\nzorb_disclaimer = ["zorblat"]\n\n'
        '[[context]]\ngroup = "zorb_disclaimer"\ndelta = -0.9\nreason = "context.zorb"\n'
        f"window = {window}\ncategories = {categories}\n",
        encoding="utf-8",
    )
    lexicon = load_lexicon([extra])
    analyzer = Analyzer(build(discover(lexicon, entry_points=[]), {}), lexicon)
    assessment = analyzer.assess("Add me on Telegram so we can talk there. Zorblat.")
    assert assessment.flagged is flagged
    reasons = {a.reason for f in assessment.findings for a in f.adjustments}
    assert ("context.zorb" in reasons) is not flagged
