"""Contact details in a message, and numbers that are not phone numbers."""

from __future__ import annotations

import pytest

from onplatform.detectors.contact_data import ContactDataDetector
from onplatform.detectors.normalize import normalize

CASES = [
    ("mail me at anna.k@example.com", "contact.email"),
    ("write to anna at example dot com", "contact.email"),
    ("call +44 7700 900 456 tonight", "contact.phone"),
    ("Ruf mich an: +44 7700\n900 654", "contact.phone"),
    ("chiamami: +4.4.7.7.0.0.9.0.0.1.1.1", "contact.phone"),
    ("join t.me/example_group", "contact.chat_link"),
    ("find me: @alex_dev_2024", "contact.handle"),
    # A handle opening the message addresses someone, as trackers and chats write it; a
    # handle alone, or a second one later on, is still shared.
    ("@dana_k please request the bonus in Upwork", None),
    ("@alex_dev_2024", "contact.handle"),
    ("@dana_k ask the others here, or write to @alex_dev_2024", "contact.handle"),
    ("budget is $1,500,000 for 2023-2024", None),
    ("order 12345 shipped on 12.05.2024", None),
    ("reach us at support@upwork.com", None),
    ("the total is 2 500 000 rubles", None),
    # A range of amounts with the currency after it: budgets in job posts.
    ("Presupuesto 800-1000 €. Pago por hitos", None),
    ("Orçamento 1.200-1.800 USD, pago pela Upwork", None),
    ("call me on 555-0169 now", "contact.phone"),
    # Chinese writes no space before a number: a mobile number still reads as one, an
    # order number does not.
    ("有意请联系13800138000，微信同号", "contact.phone"),
    ("订单号12345678901已发货", None),
]


@pytest.mark.parametrize(("text", "code"), CASES)
def test_contact_data(text: str, code: str | None) -> None:
    """Addresses, numbers, handles and links are found; amounts, dates and Upwork are not."""
    codes = {f.code for f in ContactDataDetector().detect(normalize(text))}
    assert codes == ({code} if code else set())
