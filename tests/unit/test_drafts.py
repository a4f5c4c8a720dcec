"""Draft rendering: headers from the client's mail, text from the templates."""

from __future__ import annotations

import email
from email.policy import default
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onplatform.config.schema import DraftSettings
from onplatform.daemon.drafts import DraftRenderer
from onplatform.daemon.errors import ConfigError, DraftError
from onplatform.daemon.notification import Notification


def notification(**changes: object) -> Notification:
    values: dict[str, object] = dict(
        kind="client",
        source_key="<src@upwork.test>",
        message_id="<src@upwork.test>",
        subject="New message from Maria",
        sender_address="room_1@upwork.com",
        sender_name="Maria Lopez",
        client_name="Maria Lopez",
        room_address="room_1@upwork.com",
        reply_address="room_1@upwork.com",
        references=("<a@x>", "<src@upwork.test>"),
        client_words="pay me via paypal",
    )
    values.update(changes)
    return Notification(**values)  # type: ignore[arg-type]


@pytest.fixture
def renderer() -> DraftRenderer:
    return DraftRenderer(DraftSettings(freelancer_name="Sam Carter", signature="Sam C."))


@pytest.mark.parametrize("action", ["decline", "encourage", "report"])
def test_draft_threads_under_the_client_mail(renderer: DraftRenderer, action: str) -> None:
    """To the room, Re: subject, In-Reply-To and References, marker headers, greeting by name."""
    draft = renderer.build(notification(), action, "en", "me@example.com")
    message = email.message_from_bytes(draft.raw, policy=default)
    assert message["To"] == "room_1@upwork.com"
    assert message["Subject"] == "Re: New message from Maria"
    assert message["In-Reply-To"] == "<src@upwork.test>"
    assert message["References"] == "<a@x> <src@upwork.test>"
    assert message["X-Onplatform-Source"] == "<src@upwork.test>"
    assert message["X-Onplatform-Action"] == action
    body = message.get_content()  # type: ignore[attr-defined]
    assert body.startswith("Hello Maria,") and "Sam C." in body
    assert b"\r\n" in draft.raw


def test_templates_differ_by_action(renderer: DraftRenderer) -> None:
    """Each rung of the ladder has its own text."""
    bodies = {
        a: renderer.render_body(a, "en", "Maria")[0] for a in ("decline", "encourage", "report")
    }
    assert len(set(bodies.values())) == 3
    assert "reported" in bodies["report"]


def test_client_text_cannot_inject_headers(renderer: DraftRenderer) -> None:
    """CR/LF in the name or subject never produce a header; Re: prefixes are not stacked."""
    draft = renderer.build(
        notification(client_name="Bob\r\nBcc: evil@x.test", subject="Re: RE: hi\r\nBcc: e@x.test"),
        "decline",
        "en",
        "me@example.com",
    )
    message = email.message_from_bytes(draft.raw, policy=default)
    assert message["Bcc"] is None
    assert message["Subject"] == "Re: hi Bcc: e@x.test"
    assert "\r\nBcc:" not in draft.raw.decode()


def test_reply_address_must_be_an_address(renderer: DraftRenderer) -> None:
    """A reply address that is not one plain address is refused, not written into To:."""
    with pytest.raises(DraftError):
        renderer.build(
            notification(room_address=None, reply_address="a@b.test, c@d.test"),
            "decline",
            "en",
            "me@example.com",
        )


def test_unknown_language_falls_back_to_english(renderer: DraftRenderer) -> None:
    """A language without templates is answered in English."""
    _, used = renderer.render_body("decline", "xx", "Maria")
    assert used == "en"


def test_override_directory_wins(tmp_path: Path) -> None:
    """A template in drafts.templates_dir replaces the built-in one of the same name."""
    (tmp_path / "decline.en.txt.j2").write_text("Custom no, {{ client_name }}.\n")
    renderer = DraftRenderer(DraftSettings(templates_dir=tmp_path))
    assert renderer.render_body("decline", "en", "Maria Lopez")[0] == "Custom no, Maria.\n"


def test_broken_override_fails_at_start(tmp_path: Path) -> None:
    """A template with a syntax error is a config error when the daemon starts."""
    (tmp_path / "report.en.txt.j2").write_text("{% if %}\n")
    with pytest.raises(ConfigError) as caught:
        DraftRenderer(DraftSettings(templates_dir=tmp_path))
    assert "report" in str(caught.value)


@pytest.mark.parametrize(
    ("words", "language", "greeting"),
    [
        ("¿Podemos seguir la conversación por WhatsApp mañana, por favor?", "es", "Hola Maria:"),
        ("Olá, posso te pagar por fora da plataforma para economizar?", "pt", "Olá Maria,"),
        ("Bonjour, pouvez-vous me donner votre numéro de téléphone ?", "fr", "Bonjour Maria,"),
        (
            "Können wir bitte über Telegram weiter sprechen, das ist einfacher?",
            "de",
            "Hallo Maria,",
        ),
        ("Can we continue this conversation on Telegram, please?", "en", "Hello Maria,"),
    ],
)
def test_reply_in_the_clients_language(
    renderer: DraftRenderer, words: str, language: str, greeting: str
) -> None:
    """The reply uses the template of the client's language where one exists."""
    from onplatform.daemon.language import detect_language

    detected = detect_language(words)
    assert detected == language
    body, used = renderer.render_body("decline", detected, "Maria Lopez")
    assert used == language
    assert body.startswith(greeting)


@settings(max_examples=150, deadline=None)
@given(
    subject=st.text(min_size=1, max_size=300),
    name=st.text(max_size=60),
    body_extra=st.text(max_size=400),
)
def test_draft_bytes_parse_back_to_what_was_written(
    subject: str, name: str, body_extra: str
) -> None:
    """Any subject, client name or signature (accents, CJK, "=", long lines) comes back
    intact from a standard parser: the headers are encoded and folded, the body
    quoted-printable when it needs to be."""
    signature = "Sam C. " + body_extra
    renderer = DraftRenderer(DraftSettings(freelancer_name="Sam Carter", signature=signature))
    draft = renderer.build(
        notification(subject=subject, client_name=name), "decline", "en", "Zoë Ünal <z@ex.com>"
    )
    assert all(len(line) <= 998 for line in draft.raw.split(b"\r\n"))
    assert b"\n" not in draft.raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(draft.raw, policy=default)
    assert message["Subject"] == draft.subject
    assert message["From"].addresses[0].display_name == "Zoë Ünal"
    assert message["From"].addresses[0].addr_spec == "z@ex.com"
    body = message.get_content()  # type: ignore[attr-defined]
    assert body.replace("\r\n", "\n") == draft.body.replace("\r\n", "\n").replace("\r", "\n")
