"""Every language lexicon: a few asks that must be flagged, and hard negatives that must not.

The sentences are written for this test, not taken from the corpus: they check that each
lexicon carries the general idea (pay directly, add me on, passport, interview on a chat
app) and that job talk about payments or chat apps stays quiet.
"""

from __future__ import annotations

import pytest

from onplatform.detectors.analyzer import Analyzer

PAY = "offplatform_payment"
CONTACT = "contact_exchange"
SCAM = "scam"
BENIGN = None

CASES: list[tuple[str, str, str | None]] = [
    # English
    ("en", "Can you send me your Payoneer email? I'd rather pay you directly this time.", PAY),
    ("en", "Upwork's commission is crazy, let's settle the invoice outside and both save.", PAY),
    ("en", "What's your Telegram handle? Easier to chat there.", CONTACT),
    ("en", "Our HR will run the interview on WhatsApp, message her today.", SCAM),
    ("en", "Please add Venmo and PayPal buttons to the checkout page of our store.", BENIGN),
    ("en", "I'll release the second milestone through Upwork once QA is done.", BENIGN),
    # Spanish
    ("es", "Pásame tu cuenta de PayPal y te pago directamente, sin comisiones.", PAY),
    ("es", "Agrégame a WhatsApp y seguimos hablando por allá.", CONTACT),
    ("es", "Para verificar tu identidad mándame una foto de tu pasaporte.", SCAM),
    ("es", "Necesitamos integrar PayPal en la pasarela de pago de nuestra tienda online.", BENIGN),
    ("es", "Te envío la oferta por Upwork esta tarde, revisa cuando puedas.", BENIGN),
    # Portuguese
    ("pt", "Me passa sua chave Pix que eu te pago por fora, sem a taxa do Upwork.", PAY),
    ("pt", "Me chama no zap que a gente conversa melhor por lá.", CONTACT),
    ("pt", "Antes de começar você precisa pagar a taxa de treinamento de 200 reais.", SCAM),
    ("pt", "O aplicativo precisa de um botão de Pix no checkout da loja virtual.", BENIGN),
    ("pt", "Vou liberar o pagamento pelo Upwork assim que aprovar a entrega.", BENIGN),
    # French
    ("fr", "Je préfère vous payer par virement bancaire, hors Upwork, pour éviter les frais.", PAY),
    ("fr", "Ajoute-moi sur Telegram, c'est plus simple pour discuter.", CONTACT),
    ("fr", "Envoyez une photo de votre pièce d'identité et un selfie pour la vérification.", SCAM),
    (
        "fr",
        "Il faut intégrer le paiement PayPal dans le module de notre boutique en ligne.",
        BENIGN,
    ),
    ("fr", "Je vous envoie l'offre sur Upwork ce soir.", BENIGN),
    # German
    (
        "de",
        "Ich überweise dir den Betrag direkt auf dein Konto, dann sparen wir die Gebühren.",
        PAY,
    ),
    ("de", "Schreib mir auf WhatsApp, meine Nummer steht unten.", CONTACT),
    ("de", "Für die Registrierung brauchen wir eine Kopie deines Reisepasses.", SCAM),
    ("de", "Bitte integriere PayPal als Zahlungsart in unseren Onlineshop.", BENIGN),
    ("de", "Ich zahle den Meilenstein über Upwork, sobald alles fertig ist.", BENIGN),
    # Italian
    ("it", "Ti pago con un bonifico diretto, così evitiamo le commissioni di Upwork.", PAY),
    ("it", "Scrivimi su WhatsApp, il mio numero è sul profilo.", CONTACT),
    ("it", "Installa AnyDesk e mandami il codice, configuro tutto io.", SCAM),
    ("it", "Serve un pulsante per pagare con PayPal nel checkout del negozio online.", BENIGN),
    ("it", "Ti invio l'offerta tramite Upwork domani mattina.", BENIGN),
    # Russian
    ("ru", "Давайте я переведу оплату напрямую на карту, без комиссии Upwork.", PAY),
    ("ru", "Напишите мне в телеграм, так быстрее.", CONTACT),
    ("ru", "Пришлите фото паспорта и селфи для проверки.", SCAM),
    ("ru", "Нужно интегрировать оплату через PayPal в наш интернет-магазин.", BENIGN),
    ("ru", "Оплачу этап через Upwork, как только проверю работу.", BENIGN),
    # Ukrainian
    ("uk", "Оплачу напряму на картку, щоб не платити комісію Upwork.", PAY),
    ("uk", "Напишіть мені у телеграм, там зручніше.", CONTACT),
    ("uk", "Надішліть фото паспорта та селфі для перевірки.", SCAM),
    ("uk", "Потрібно інтегрувати оплату PayPal в наш інтернет-магазин.", BENIGN),
    ("uk", "Оплачу через Upwork одразу після перевірки.", BENIGN),
    # Polish
    ("pl", "Zapłacę przelewem bezpośrednio, poza Upworkiem, bez prowizji.", PAY),
    ("pl", "Napisz do mnie na WhatsAppie, tak będzie szybciej.", CONTACT),
    ("pl", "Prześlij skan dowodu osobistego i selfie do weryfikacji.", SCAM),
    ("pl", "Trzeba zintegrować płatności PayPal w naszym sklepie internetowym.", BENIGN),
    ("pl", "Zapłacę za etap przez Upwork po odbiorze pracy.", BENIGN),
    # Turkish
    ("tr", "Ödemeyi Upwork dışında havale ile yapalım, komisyon vermeyelim.", PAY),
    ("tr", "Bana WhatsApp'tan yazın, numaram profilde.", CONTACT),
    ("tr", "Doğrulama için pasaportunuzun fotoğrafını gönderin.", SCAM),
    ("tr", "Online mağazamıza PayPal ödeme entegrasyonu yapılması gerekiyor.", BENIGN),
    ("tr", "Ödemeyi Upwork üzerinden yapacağım, teklif gönderdim.", BENIGN),
    # Arabic
    ("ar", "سأدفع لك مباشرة خارج أبوورك عن طريق تحويل بنكي لتجنب العمولة.", PAY),
    ("ar", "أرسل لي رقمك على الواتساب لنكمل هناك.", CONTACT),
    ("ar", "نحتاج صورة جواز السفر وسيلفي للتحقق من هويتك.", SCAM),
    ("ar", "نريد دمج بوابة الدفع بايبال في متجرنا الإلكتروني.", BENIGN),
    ("ar", "سأدفع المرحلة عبر أبوورك بعد المراجعة.", BENIGN),
    # Indonesian
    ("id", "Bayar langsung ke rekening saya saja ya, biar gak kena potongan Upwork.", PAY),
    ("id", "Boleh minta nomor WA kamu? Kita lanjut ngobrol di sana.", CONTACT),
    ("id", "Untuk verifikasi, kirim foto KTP dan selfie kamu.", SCAM),
    ("id", "Kami butuh integrasi payment gateway OVO dan DANA di toko online kami.", BENIGN),
    ("id", "Saya bayar milestone lewat Upwork setelah review.", BENIGN),
    # Chinese
    ("zh", "我直接用支付宝转账给你，不走平台，省手续费。", PAY),
    ("zh", "加我微信聊吧，这里不方便。", CONTACT),
    ("zh", "请先交500元培训费，完成后会退还。", SCAM),
    ("zh", "我们的网店需要接入支付宝和微信支付。", BENIGN),
    ("zh", "验收后我会通过Upwork付款。", BENIGN),
    # Tagalog
    ("tl", "Sa GCash na lang kita babayaran nang diretso para walang fee.", PAY),
    ("tl", "I-add mo ako sa Viber, dun na lang tayo mag-usap.", CONTACT),
    ("tl", "Magpadala ka ng picture ng passport mo at selfie para sa verification.", SCAM),
    ("tl", "Kailangan naming i-integrate ang GCash sa checkout ng online shop.", BENIGN),
    ("tl", "Babayaran kita sa Upwork pagkatapos ng review.", BENIGN),
    # Romanised Hindi / Hinglish
    ("hi", "Apna UPI ID bhejo, seedha payment kar dunga, Upwork ka commission bach jayega.", PAY),
    ("hi", "Apna WhatsApp number do, wahan baat karte hain.", CONTACT),
    ("hi", "Joining ke liye pehle registration fee jama karni hogi.", SCAM),
    ("hi", "Humare app mein Paytm aur UPI checkout integrate karna hai.", BENIGN),
    ("hi", "Kaam approve hote hi Upwork se hi payment karunga.", BENIGN),
]


@pytest.mark.parametrize(
    ("language", "text", "expected"),
    CASES,
    ids=[f"{language}-{i}" for i, (language, _, _) in enumerate(CASES)],
)
def test_language_case(analyzer: Analyzer, language: str, text: str, expected: str | None) -> None:
    assessment = analyzer.assess(text)
    codes = ", ".join(assessment.codes) or "-"
    if expected is None:
        assert not assessment.flagged, f"{language}: flagged as {assessment.category} ({codes})"
    else:
        assert assessment.flagged, f"{language}: not flagged ({codes})"
        assert assessment.category == expected, f"{language}: got {assessment.category} ({codes})"


def test_every_language_has_a_lexicon(analyzer: Analyzer) -> None:
    wanted = {language for language, _, _ in CASES}
    assert wanted <= set(analyzer.lexicon.languages)
