"""Reply language: function words and script, no model; the default whenever unsure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onplatform.daemon.language import SUPPORTED, detect_language, guess_language

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "messages.jsonl"
TEMPLATES = {"en", "es", "pt", "fr", "de"}
UNSURE = "xx"
"""A default no language can be mistaken for, so that tests see when it is given."""


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("Could you send me the updated design files before our call on Thursday?", "en"),
        ("¿Podrías enviarme los diseños actualizados antes de nuestra llamada del jueves?", "es"),
        ("Você poderia me mandar os arquivos atualizados antes da nossa reunião de quinta?", "pt"),
        ("Pourriez-vous m'envoyer les fichiers mis à jour avant notre appel de jeudi ?", "fr"),
        (
            "Könnten Sie mir die aktualisierten Dateien vor unserem Termin am Donnerstag schicken?",
            "de",
        ),
        ("Potresti mandarmi i file aggiornati prima della nostra chiamata di giovedì?", "it"),
        ("Не могли бы вы прислать мне обновлённые файлы до нашего созвона в четверг?", "ru"),
        ("Чи могли б ви надіслати мені оновлені файли до нашого дзвінка в четвер?", "uk"),
        ("Czy możesz przesłać mi zaktualizowane pliki przed naszą rozmową w czwartek?", "pl"),
        ("Perşembe günkü görüşmemizden önce güncel dosyaları bana gönderebilir misiniz?", "tr"),
        ("هل يمكنك إرسال الملفات المحدثة قبل مكالمتنا يوم الخميس؟", "ar"),
        (
            "Bisakah kamu mengirim file yang sudah diperbarui sebelum panggilan kita hari Kamis?",
            "id",
        ),
        ("你能在周四通话之前把更新后的文件发给我吗？", "zh"),
        (
            "Pwede mo bang ipadala sa akin ang mga updated na file bago ang tawag natin bukas?",
            "tl",
        ),
        ("Kya aap Thursday ki call se pehle updated files bhej sakte hain?", "hi"),
        ("क्या आप गुरुवार की कॉल से पहले अपडेट की गई फाइलें भेज सकते हैं?", "hi"),
    ],
)
def test_each_language_read(words: str, expected: str) -> None:
    """A plain request in each language the product reads is named, even with another default."""
    assert detect_language(words, default=UNSURE) == expected


@pytest.mark.parametrize(
    "words",
    [
        "ok",
        "Thanks! 👍",
        "+1 555 0100 ext 22",
        "Hola!",
        "t e l e g r a m",
        "Hola amigo, can you send me tu número? Gracias, thanks",
        "Merci pour le devis, but can we talk about it demain?",
        "Danke für das Angebot, but can we talk tomorrow?",
    ],
)
def test_short_or_mixed_text_gets_the_default(words: str) -> None:
    """Too few letters, or two languages in even measure, give the default."""
    assert detect_language(words, default=UNSURE) == UNSURE


def test_default_is_english_unless_given() -> None:
    """The default language is English when the caller names none."""
    assert detect_language("ok") == "en"


@pytest.mark.parametrize(
    "words",
    [
        "Ciao, ho visto la tua proposta e mi sembra molto interessante.",
        "Possiamo sentirci domani mattina per parlare del progetto?",
        "Non ho ancora ricevuto la fattura, puoi mandarla di nuovo?",
        "Grazie per il lavoro, il cliente è molto contento del risultato.",
        "Vorrei aggiungere una pagina per i contatti e una per il blog.",
        "Mi serve una dashboard con grafici, una tabella e un filtro per data.",
    ],
)
def test_italian_is_not_taken_for_spanish(words: str) -> None:
    """Italian, which has no template, is named as Italian and never answered in Spanish."""
    assert detect_language(words, default=UNSURE) == "it"


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("Hola, vi tu propuesta y me parece muy interesante.", "es"),
        ("Olá, vi a sua proposta e achei muito interessante.", "pt"),
        ("¿Podemos hablar mañana por la mañana sobre el proyecto?", "es"),
        ("Podemos conversar amanhã de manhã sobre o projeto?", "pt"),
        ("Todavía no recibí la factura, ¿puedes enviarla de nuevo?", "es"),
        ("Ainda não recebi a fatura, você pode enviar de novo?", "pt"),
    ],
)
def test_portuguese_and_spanish_told_apart(words: str, expected: str) -> None:
    """The same request in Spanish and in Portuguese gets each its own template."""
    assert detect_language(words, default=UNSURE) == expected


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("Дякую за роботу, все виглядає чудово, чекаю на наступний етап.", "uk"),
        ("Спасибо за работу, всё выглядит отлично, жду следующий этап.", "ru"),
        ("Коли ви зможете почати працювати над проєктом?", "uk"),
        ("Когда вы сможете начать работать над проектом?", "ru"),
    ],
)
def test_ukrainian_and_russian_told_apart(words: str, expected: str) -> None:
    """Cyrillic text is Ukrainian or Russian by its letters (і, ї, є / ы, э, ё) and words."""
    assert detect_language(words, default=UNSURE) == expected


@pytest.mark.parametrize(
    "words",
    [
        "Kunnen we morgen bellen over het project? Ik heb de bestanden al gestuurd.",
        "Hola, podries enviar-me els fitxers del projecte demà? Moltes gràcies per la feina.",
        "Bună ziua, puteți să-mi trimiteți fișierele mâine? Vă mulțumesc foarte mult.",
        "Hej, kan du skicka filerna till mig i morgon? Tack så mycket för hjälpen.",
        "Dobrý den, můžete mi zítra poslat soubory k projektu? Děkuji moc za pomoc.",
        "明日までにファイルを送っていただけますか？よろしくお願いします。",
        "내일까지 파일을 보내주실 수 있나요? 감사합니다.",
        "سلام، می‌توانید فایل‌ها را فردا برای من بفرستید؟ خیلی ممنون.",
        "Γεια σας, μπορείτε να μου στείλετε τα αρχεία αύριο; Ευχαριστώ πολύ.",
        "Bạn có thể gửi tệp cho tôi vào ngày mai không? Cảm ơn bạn rất nhiều.",
    ],
)
def test_unread_languages_get_the_default(words: str) -> None:
    """Dutch, Catalan, Japanese, Persian, Vietnamese... get the default, not a near neighbour."""
    assert detect_language(words, default=UNSURE) == UNSURE


def test_addresses_and_spaced_out_letters_are_not_words() -> None:
    """``.com`` in a link is not Portuguese ``com``; ``t e l e g r a m`` is not Portuguese ``e``."""
    site = "Unser Auftritt ist https://www.example.com, das Repo liegt unter https://github.com/x."
    assert detect_language(site, default=UNSURE) == "de"
    spelled = "Can you message me on t e l e g r a m or w h a t s a p p instead of here?"
    assert detect_language(spelled, default=UNSURE) == "en"


def test_guess_explains_itself() -> None:
    """The guess says why: the script, the words with their scores, or why it gave up."""
    assert guess_language("你能在周四通话之前把更新后的文件发给我吗？").reason == "script"
    words = guess_language("Potresti mandarmi i file aggiornati prima di giovedì?", UNSURE)
    assert (words.language, words.reason) == ("it", "words")
    assert words.scores[0][0] == "it" and words.scores[0][1] > words.scores[1][1]
    assert guess_language("ok", UNSURE).reason == "short"
    assert guess_language(
        "Integrate Stripe checkout webhooks, retries, idempotency keys"
    ).reason in {
        "weak",
        "close",
    }


@given(st.text(max_size=300))
def test_any_text_gets_a_supported_language_or_the_default(words: str) -> None:
    """Whatever the text, the answer is a supported language or the default, never an error."""
    assert detect_language(words, default=UNSURE) in {*SUPPORTED, UNSURE}


def test_no_language_model_is_loaded() -> None:
    """No model is loaded: the 75 MB py3langid model is gone from the daemon."""
    detect_language("Você pode me enviar os arquivos da página amanhã, por favor?")
    assert "py3langid" not in sys.modules


def _corpus() -> list[tuple[str, str]]:
    """(text, language) of the corpus messages in one language ("hi-Latn" read as "hi")."""
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]
    return [
        (row["text"], "hi" if row["language"] == "hi-Latn" else row["language"])
        for row in rows
        if row.get("language") not in (None, "mixed")
    ]


def test_corpus_agreement() -> None:
    """On the corpus, most languages are named, the right template is nearly always chosen,
    and a template language is (almost) never chosen for a message in another language."""
    corpus = _corpus()
    guessed = [(detect_language(text), language) for text, language in corpus]
    exact = sum(got == want for got, want in guessed) / len(corpus)
    template = sum(
        (got if got in TEMPLATES else "en") == (want if want in TEMPLATES else "en")
        for got, want in guessed
    ) / len(corpus)
    wrong_template = [(got, want) for got, want in guessed if got in TEMPLATES - {"en", want}]
    assert len(corpus) >= 500
    assert exact >= 0.88, exact
    assert template >= 0.96, template
    assert len(wrong_template) <= len(corpus) // 200, wrong_template
