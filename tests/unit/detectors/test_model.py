"""The statistical second opinion: features, training, the file, and the blend."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from onplatform.config.schema import ModelSettings
from onplatform.daemon.errors import ConfigError
from onplatform.daemon.pipeline import configured_model
from onplatform.detectors.analyzer import (
    MODEL_ALONE_MAX_WORDS,
    MODEL_ALONE_SURE,
    MODEL_FEW_FEATURES,
    MODEL_SURE_OF_SCAM,
    MODEL_VETO_BELOW,
    MODEL_VETO_BELOW_FEW,
    MODEL_WEIGHT,
    Analyzer,
)
from onplatform.detectors.evaluation import CorpusError
from onplatform.detectors.lexicon import Lexicon
from onplatform.detectors.matcher import SENTENCE_TOKEN
from onplatform.detectors.model import (
    MODEL_PATH,
    IntentModel,
    ModelError,
    TrainingSettings,
    features,
    load_model,
    train,
)
from onplatform.detectors.normalize import normalize
from onplatform.detectors.registry import build, discover
from onplatform.detectors.training import build_model

CORPUS_DIR = Path(__file__).resolve().parents[2] / "corpus"
BENIGN_BIAS = [2.0, 0.0, 0.0, 0.0]


def test_features_are_words_pairs_and_groups() -> None:
    tokens = ["pay", "me", SENTENCE_TOKEN, "on", "paypal"]
    found = features(tokens, ["pay_verb", "pay_channel", "pay_verb"])
    assert {"pay", "me", "on", "paypal", "pay me", "on paypal", "p:paypa"} <= found
    assert f"me {SENTENCE_TOKEN}" in found  # "me" ends a sentence
    assert {"g:pay_channel", "g:pay_verb", "g:pay_channel+pay_verb"} <= found
    assert "g:pay_verb+pay_channel" not in found  # one name per pair of groups
    assert len(found) == 13


def test_training_learns_the_labels_and_is_reproducible() -> None:
    examples = [
        (features(["send", "it", "to", "my", "paypal"], ["pay_channel"]), "offplatform_payment"),
        (features(["add", "me", "on", "telegram"], ["chat_channel"]), "contact_exchange"),
        (features(["buy", "the", "laptop", "from", "our", "vendor"], []), "scam"),
        (features(["the", "logo", "looks", "great"], []), "benign"),
        (features(["please", "send", "the", "files"], []), "benign"),
    ] * 3
    settings = TrainingSettings(epochs=20, prune=0.0)
    model = train(examples, settings)
    payment = model.opinion(features(["my", "paypal"], ["pay_channel"]))
    assert payment.category == "offplatform_payment" and payment.flagged > 0.8
    assert model.opinion(features(["the", "logo"], [])).flagged < 0.2
    assert model.opinion(features(["on", "telegram"], [])).category == "contact_exchange"
    assert train(examples, settings).dump({}) == model.dump({})


def test_training_averages_the_weights_of_runs_in_different_orders() -> None:
    examples = [
        (features(["send", "it", "to", "my", "paypal"], ["pay_channel"]), "offplatform_payment"),
        (features(["the", "logo", "looks", "great"], []), "benign"),
        (features(["add", "me", "on", "telegram"], ["chat_channel"]), "contact_exchange"),
    ] * 2
    runs = [
        train(examples, TrainingSettings(epochs=3, prune=0.0, seed=seed, runs=1)) for seed in (5, 6)
    ]
    averaged = train(examples, TrainingSettings(epochs=3, prune=0.0, seed=5, runs=2))
    assert runs[0].weights("paypal") != runs[1].weights("paypal")  # the order matters
    for name in ("paypal", "logo", "telegram", "g:pay_channel"):
        one, two, both = runs[0].weights(name), runs[1].weights(name), averaged.weights(name)
        assert one is not None and two is not None and both is not None
        assert both == pytest.approx([(a + b) / 2 for a, b in zip(one, two, strict=True)])
    first, second = (run.bias for run in runs)
    assert averaged.bias == pytest.approx([(a + b) / 2 for a, b in zip(first, second, strict=True)])
    with pytest.raises(ValueError, match="runs"):
        train(examples, TrainingSettings(runs=0))


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    model = IntentModel(BENIGN_BIAS, {"quux": [0.0, 0.0, 0.0, 8.12345], "a b": [1, 2, 3, 4]})
    path = tmp_path / "model.tsv"
    path.write_text(model.dump({"messages": 2}), encoding="utf-8")
    loaded = load_model(path)
    assert len(loaded) == 2
    assert loaded.weights("quux") == (0.0, 0.0, 0.0, 8.1235)
    assert loaded.weights("a b") == (1.0, 2.0, 3.0, 4.0)
    assert loaded.bias == tuple(BENIGN_BIAS)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", ":1: expected the JSON header"),
        ('{"format": 9}\n', ":1: expected a model file of format 1"),
        ('{"format": 1, "labels": ["a"]}\n', ":1: labels must be benign"),
        (
            '{"format": 1, "labels": ["benign", "offplatform_payment", "contact_exchange",'
            ' "scam"], "bias": [0, 0, 0, 0]}\nw:x\t1\t2\n',
            ":2: feature 'w:x': expected a new feature and 4 weights",
        ),
        (
            '{"format": 1, "labels": ["benign", "offplatform_payment", "contact_exchange",'
            ' "scam"], "bias": [0, 0, 0, 0]}\nw:x\t1\t2\t3\tfour\n',
            ":2: could not convert string to float",
        ),
    ],
)
def test_a_bad_model_file_is_named_with_its_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "model.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ModelError, match=message) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_the_config_names_a_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"detectors\.model\.path: .*absent\.tsv: cannot read"):
        configured_model(ModelSettings(path=tmp_path / "absent.tsv"))
    assert configured_model(ModelSettings(enabled=False)) is None
    assert configured_model(ModelSettings(weight=0.0)) is None
    shipped = configured_model(ModelSettings())
    assert shipped is not None and len(shipped) > 1000


def test_a_bad_corpus_line_is_named(tmp_path: Path, lexicon: Lexicon) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "hi", "label": "benign"}\n{"text": "no label"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"c\.jsonl:2: label must be one of"):
        build_model(tmp_path, lexicon)


def _with_model(lexicon: Lexicon, model: IntentModel) -> Analyzer:
    return Analyzer(build(discover(lexicon, entry_points=[]), {}), lexicon, model=model)


def test_a_sure_model_flags_what_the_rules_miss(lexicon: Lexicon) -> None:
    analyzer = _with_model(lexicon, IntentModel(BENIGN_BIAS, {"quux": [0, 0, 0, 9]}))
    assessment = analyzer.assess("Hello there. Kindly quux the thing today.")
    assert assessment.rules_score == 0
    assert assessment.flagged and assessment.category == "scam"
    assert assessment.score == pytest.approx(MODEL_WEIGHT * assessment.model_score, abs=1e-3)
    (finding,) = assessment.counted
    assert finding.code == "model.scam"
    assert [span.text for span in finding.evidence] == ["quux"]


def test_the_model_reads_the_kind_of_contact_detail_not_its_words(lexicon: Lexicon) -> None:
    # The weight sits on the kind of detail alone: no word of either address is known.
    model = IntentModel(BENIGN_BIAS, {"g:contact.email": [0, 0, 9, 0]})
    analyzer = _with_model(lexicon, model)
    for address in ("ana.lima@gmail.com", "kontakt@firma.pl"):
        assessment = analyzer.assess(f"Send the draft to {address} tonight")
        assert assessment.model_score is not None and assessment.model_score > 0.99
        assert assessment.flagged and assessment.category == "contact_exchange"
    # Without an address only the bias speaks: three flagged labels at 0 against 2.
    assert analyzer.assess("Send the draft here tonight").model_score == pytest.approx(
        3 / (math.exp(2.0) + 3), abs=1e-3
    )


def test_training_reads_the_contact_details_of_each_message(
    tmp_path: Path, lexicon: Lexicon
) -> None:
    lines = [
        '{"id": "a", "text": "write to nina@example.com", "label": "contact_exchange"}',
        '{"id": "b", "text": "call +1 555 0142 now", "label": "contact_exchange"}',
        '{"id": "c", "text": "write the intro now", "label": "benign"}',
    ]
    (tmp_path / "tiny.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    model, _ = build_model(tmp_path, lexicon, TrainingSettings(epochs=5, prune=0.0, runs=1))
    for kind in ("g:contact.email", "g:contact.phone"):
        weights = model.weights(kind)
        assert weights is not None and weights[2] > weights[0]  # contact, not benign


def test_a_model_sure_of_nothing_outweighs_a_rule(lexicon: Lexicon) -> None:
    ask = "Pay me on PayPal directly to skip the fees"
    rules_only = Analyzer(build(discover(lexicon, entry_points=[]), {}), lexicon)
    assert rules_only.assess(ask).flagged and rules_only.assess(ask).model_score is None
    quiet = _with_model(lexicon, IntentModel([12.0, 0.0, 0.0, 0.0], {}))
    assessment = quiet.assess(ask)
    assert not assessment.flagged
    assert assessment.rules_score == rules_only.assess(ask).score
    assert assessment.score == pytest.approx((1 - MODEL_WEIGHT) * assessment.rules_score, abs=1e-3)


def test_the_shipped_model_is_what_the_script_builds(lexicon: Lexicon) -> None:
    """The model reads lexicon groups: a lexicon or corpus change needs a retrain
    (``.venv/bin/python scripts/train_model.py``)."""
    if not CORPUS_DIR.is_dir():
        pytest.skip("no corpus")
    model, about = build_model(CORPUS_DIR, lexicon)
    files: list[str] = about["files"]  # type: ignore[assignment]
    assert not any(name.endswith("_blind.jsonl") for name in files)
    assert any(name.endswith("_holdout.jsonl") for name in files)  # held out from the rules only
    assert model.dump(about) == MODEL_PATH.read_text(encoding="utf-8"), (
        "detectors/model.tsv is stale: run scripts/train_model.py"
    )


def test_alerts_quote_the_rules_before_the_model(lexicon: Lexicon) -> None:
    analyzer = _with_model(lexicon, IntentModel(BENIGN_BIAS, {"paypal": [0, 12, 0, 0]}))
    assessment = analyzer.assess("Pay me on PayPal directly to skip the fees")
    assert assessment.flagged and assessment.category == "offplatform_payment"
    assert assessment.counted[0].detector == "phrases"
    assert assessment.counted[-1].code == "model.offplatform_payment"
    assert assessment.counted[-1].score > assessment.counted[0].score  # last despite that


def test_an_unsure_model_never_lowers_the_rules(lexicon: Lexicon) -> None:
    ask = "Pay me on PayPal directly to skip the fees"
    # Bias alone: P(benign) = e^0.5 / (e^0.5 + 3) = 0.35, so the model gives 0.65 to a
    # flag, split over three labels: unsure, above the veto line.
    unsure = _with_model(lexicon, IntentModel([0.5, 0.0, 0.0, 0.0], {}))
    assessment = unsure.assess(ask)
    assert MODEL_VETO_BELOW <= assessment.model_score < 0.7
    assert assessment.flagged and assessment.score == assessment.rules_score


def test_a_model_that_knows_few_of_the_words_vetoes_only_when_surer(lexicon: Lexicon) -> None:
    """Near its prior, a model that has weights for few of a message's features reads a
    short ask in unfamiliar words as ordinary: the veto line is lower then."""
    ask = "Pay me on PayPal directly to skip the fees"
    bias = [math.log(3 * 0.93 / 0.07), 0.0, 0.0, 0.0]  # P(flagged) = 0.07 from the bias
    unfamiliar = _with_model(lexicon, IntentModel(bias, {}))
    assessment = unfamiliar.assess(ask)
    assert assessment.model_score is not None
    assert MODEL_VETO_BELOW_FEW <= assessment.model_score < MODEL_VETO_BELOW
    assert assessment.flagged and assessment.score == assessment.rules_score
    scan = lexicon.matcher.scan(normalize(ask).normalized)
    read = features(scan.tokens, scan.token_groups)
    assert len(read) >= MODEL_FEW_FEATURES
    familiar = _with_model(lexicon, IntentModel(bias, {name: [0, 0, 0, 0] for name in read}))
    vetoed = familiar.assess(ask)
    assert vetoed.model_score == assessment.model_score and not vetoed.flagged


def test_cues_quote_words_pairs_and_stems_where_they_first_appear() -> None:
    model = IntentModel(
        BENIGN_BIAS,
        {"send it": [0, 0, 3, 0], "p:teleg": [0, 0, 2, 0], "hello": [0, 0, 1, 0]},
    )
    tokens = ["hello", "send", "it", SENTENCE_TOKEN, "on", "telegramm", "send", "it"]
    found = features(tokens, [])
    assert model.cues(found, tokens, "contact_exchange", limit=2) == ((1, 3), (5, 6))
    # "hello" (token 0) joins the pair that follows it: overlapping ranges are merged.
    assert model.cues(found, tokens, "contact_exchange") == ((0, 3), (5, 6))
    assert model.cues(found, tokens, "scam") == ()  # nothing pulls toward a scam


def test_cues_leave_the_sentence_end_out_of_a_pair() -> None:
    tokens = ["done", SENTENCE_TOKEN, "upwork", "support"]
    model = IntentModel(BENIGN_BIAS, {f"{SENTENCE_TOKEN} upwork": [0, 0, 0, 3]})
    assert model.cues(features(tokens, []), tokens, "scam") == ((2, 3),)


def test_a_sure_model_does_not_veto_a_tentative_ask(lexicon: Lexicon) -> None:
    """A hedged ask keeps the rules' score even when the model is sure it is ordinary:
    it lacks the demand words the model reads asks by, and the policy must answer it."""
    quiet = _with_model(lexicon, IntentModel([12.0, 0.0, 0.0, 0.0], {}))
    demand = quiet.assess("Pay me on PayPal directly to skip the fees")
    tentative = quiet.assess("Would it be possible to pay you on PayPal directly to skip the fees?")
    assert not demand.flagged  # vetoed: the model is sure of nothing
    assert tentative.model_score is not None and tentative.model_score < MODEL_VETO_BELOW
    assert tentative.flagged and tentative.hesitant
    assert tentative.score == tentative.rules_score


def test_a_sure_model_does_not_veto_a_certain_rule(lexicon: Lexicon) -> None:
    """A rule at full score names the ask outright: a model that reads the rest of the
    message as ordinary must not hide it."""
    quiet = _with_model(lexicon, IntentModel([12.0, 0.0, 0.0, 0.0], {}))
    assessment = quiet.assess("Our HR onboarding is done. Send me the code you just got.")
    assert assessment.model_score is not None and assessment.model_score < MODEL_VETO_BELOW
    assert assessment.rules_score == 1.0
    assert assessment.flagged and assessment.category == "scam"
    assert assessment.score == assessment.rules_score


def test_an_unflagged_message_still_says_where_it_leans(lexicon: Lexicon) -> None:
    """A follow-up is flagged in the category its own evidence points to: the rules'
    strongest, or the model's when the model is the surer of the two."""
    rules_only = Analyzer(build(discover(lexicon, entry_points=[]), {}), lexicon)
    mention = rules_only.assess("Everyone does it. Revolut then?")
    assert not mention.flagged and 0 < mention.rules_score < 0.5
    assert mention.leaning == "offplatform_payment"
    assert rules_only.assess("Thanks for the logo.").leaning is None
    leaning = _with_model(lexicon, IntentModel(BENIGN_BIAS, {"quux": [0, 0, 0, 1.5]}))
    unsure = leaning.assess("Kindly quux.")
    assert not unsure.flagged and unsure.model_score is not None and unsure.model_score > 0.4
    assert unsure.leaning == "scam"


def test_a_model_sure_of_a_scam_names_the_category(lexicon: Lexicon) -> None:
    """Scam outranks the others: when the rules read only the chat app a story ends with,
    a model sure the story is a scam decides the category, and only then."""
    ask = "Kindly quux. Add me on Telegram, @quux_example"
    # P(benign) = 1 / (1 + 2 e^-8 + e^w): the weight on "quux" sets how sure the model is.
    for weight, expected in ((3.0, "scam"), (1.0, "contact_exchange")):
        model = IntentModel([0.0, -8.0, -8.0, 0.0], {"quux": [0, 0, 0, weight]})
        assessment = _with_model(lexicon, model).assess(ask)
        assert assessment.model_score is not None
        assert (assessment.model_score >= MODEL_SURE_OF_SCAM) == (expected == "scam")
        assert assessment.flagged and assessment.category == expected
        assert any(f.category == "contact_exchange" and f.score >= 0.5 for f in assessment.findings)


def test_the_model_alone_does_not_flag_a_long_text_the_rules_found_nothing_in(
    lexicon: Lexicon,
) -> None:
    """Many small pulls in a long job post add up to a sure-looking score: alone, the
    model flags only short messages; with a rule's trace it weighs in at any length."""
    model = _with_model(lexicon, IntentModel(BENIGN_BIAS, {"quux": [0, 0, 0, 4]}))
    short = "Kindly quux the build tonight."
    filler = " ".join(["We ship the new dashboard next sprint with charts and exports."] * 8)
    long = f"{filler} Kindly quux the build tonight."
    assert model.assess(short).flagged
    assessment = model.assess(long)
    assert len(long.split()) > MODEL_ALONE_MAX_WORDS
    assert assessment.model_score is not None
    assert 0.5 < assessment.model_score < MODEL_ALONE_SURE
    assert assessment.rules_score == 0 and not assessment.flagged
    assert assessment.model_withheld and not model.assess(short).model_withheld
    assert not any(f.detector == "model" for f in assessment.findings)
    # A weak rule trace (a channel named, 0.2) lets the model flag the long text.
    traced = model.assess(f"{filler} Kindly quux the build tonight, PayPal ok.")
    assert 0 < traced.rules_score < 0.5 and traced.flagged


def test_a_sure_model_flags_a_long_text_alone(lexicon: Lexicon) -> None:
    """Past ``MODEL_ALONE_SURE`` the length no longer withholds the model's flag: the
    long asks the rules miss read that sure, the long ordinary texts did not."""
    model = _with_model(lexicon, IntentModel(BENIGN_BIAS, {"quux": [0, 0, 0, 7]}))
    filler = " ".join(["We ship the new dashboard next sprint with charts and exports."] * 8)
    assessment = model.assess(f"{filler} Kindly quux the build tonight.")
    assert assessment.model_score is not None and assessment.model_score >= MODEL_ALONE_SURE
    assert assessment.rules_score == 0 and assessment.flagged and not assessment.model_withheld
    assert assessment.category == "scam"
    assert [f.detector for f in assessment.findings] == ["model"]
