"""Reply language: English by its function words, the rest by the offline model."""

from __future__ import annotations

import pytest

from onplatform.daemon import language
from onplatform.daemon.language import detect_language, plainly_english


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("Can you send me the files for the landing page by Friday?", "en"),
        ("¿Puedes enviarme los archivos de la página mañana, por favor?", "es"),
        ("Você pode me enviar os arquivos da página amanhã, por favor?", "pt"),
        ("Pouvez-vous m'envoyer les fichiers de la page demain, s'il vous plaît ?", "fr"),
        ("Können Sie mir bitte morgen die Dateien für die Seite schicken?", "de"),
        ("ok", "en"),
    ],
)
def test_detect_language(words: str, expected: str) -> None:
    """The five languages with reply templates are told apart; short text gets the default."""
    assert detect_language(words) == expected


def test_english_does_not_load_the_model() -> None:
    """Plain English is recognised without the 75 MB model."""
    language._identifier.cache_clear()
    assert plainly_english("Thanks, can we move the call to Monday at noon?")
    assert detect_language("Thanks, can we move the call to Monday at noon?") == "en"
    assert language._identifier.cache_info().currsize == 0
    assert not plainly_english("Podemos mover la llamada al lunes a mediodía")
