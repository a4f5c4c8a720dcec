"""CI gate: the analyzer on the labelled corpus must stay above a quality floor.

The floors hold for what a default config runs, the rules with the shipped model
blended in. The rules must also reach the product target alone on the tuned files,
so a lexicon regression cannot hide behind the model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from onplatform.daemon.policy import respond
from onplatform.detectors.analyzer import Analyzer
from onplatform.detectors.evaluation import EvalReport, evaluate, format_report

CORPUS_DIR = Path(__file__).resolve().parents[2] / "corpus"

TARGET_F1 = 0.95
TARGET_FPR = 0.03
TARGET_CATEGORY = 0.90


@dataclass(frozen=True)
class Floor:
    """What a corpus must keep: raise a floor whenever the detectors improve; lower one only
    for a measured trade, said in the note below the floors."""

    f1: float
    fpr: float
    intent: float
    """Share of flagged records whose hesitant and insisting marks are right."""
    target: bool = True
    """Tuned on: the product target applies too, to the rules alone as well."""
    rules: tuple[float, float] | None = None
    """F1 and false-positive rate the rules alone keep on a holdout. The lexicons never
    saw a holdout, but the model has read it (see tests/corpus/README.md), so the blend's
    figure there only shows that the model still fits its data; the rules' figure is
    the one that shows how the lexicons carry over."""


def held_out(intent: float, rules: tuple[float, float], f1: float = 0.995) -> Floor:
    """A holdout's floor: the model has read it, so the blend keeps the tuned files' F1
    and false-positive floors there; ``rules`` is the figure that says something."""
    return Floor(f1=f1, fpr=0.005, intent=intent, target=False, rules=rules)


FLOORS = {
    "messages.jsonl": Floor(f1=0.995, fpr=0.004, intent=0.99),
    "fresh.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.99),
    "forum.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.975),
    "negation.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.9),
    "round5.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.99),
    "round6.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.97),
    "round7.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.97),
    "round8.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.97),
    "round9.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.97),
    "round10.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.99),
    "round11.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98),
    "round12.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98),
    "round13.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98),
    "round15.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.965),
    "round16.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.985),
    "round17.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98),
    "round18.jsonl": Floor(f1=0.995, fpr=0.005, intent=0.98),
    "round33.jsonl": Floor(f1=0.99, fpr=0.006, intent=0.98),
    # Two money-mule posts written as lists of duties fewer for the rules alone since a
    # list reads its opening lines for job words (0.921); the blend still flags them.
    "round34.jsonl": Floor(f1=0.99, fpr=0.004, intent=0.98, target=False, rules=(0.92, 0.008)),
    # Rounds 35 to 37 mark no hesitant or insisting message: the intent floor binds nothing.
    "round35.jsonl": Floor(f1=0.995, fpr=0.005, intent=1.0),
    # Job posts in other languages: the rules alone flag 10 % of the benign ones (payment
    # and sign-up features in specs) and the model clears them, as on round 34.
    "round36.jsonl": Floor(f1=0.995, fpr=0.005, intent=1.0, target=False, rules=(0.83, 0.105)),
    # Real-world style (session 12): task lures, fake recruiters, malware "run our repo"
    # tests, blunt contact asks, and the entry-level posts and DM-answering jobs like them.
    "round38.jsonl": Floor(f1=0.995, fpr=0.005, intent=1.0, target=False, rules=(0.95, 0.015)),
    # Short direct asks (session 12): "how do I contact you?", "方便加个微信吗", numbers glued
    # to Chinese text, and the same words kept on Upwork.
    "round40.jsonl": Floor(f1=0.995, fpr=0.005, intent=1.0, target=False, rules=(0.955, 0.01)),
    # Long posts in every language, mostly benign with risky words used innocently
    # (session 13): the rules alone flag a fifth to a quarter of the benign ones (payment
    # features, sign-up screens, Slack after the contract starts) and the model clears them.
    "round42.jsonl": Floor(f1=0.99, fpr=0.01, intent=1.0, target=False, rules=(0.835, 0.205)),
    "round44.jsonl": Floor(f1=0.99, fpr=0.01, intent=1.0, target=False, rules=(0.79, 0.25)),
    # The hardest benign ones (session 13): customers' messages quoted for canned replies,
    # courses on scams to translate that quote the scammers, security tips, a client taking
    # back an offer to pay outside. The rules alone flag 45 % of them; the model, which
    # has read them, still 3.9 %.
    "round45.jsonl": Floor(f1=0.95, fpr=0.045, intent=1.0, target=False, rules=(0.62, 0.45)),
    # What real clients write and the legitimate messages that look like scams (session 14):
    # paid interviewer gigs, "send us your CV", a client who keeps everything in the Upwork
    # chat, an IT-support job on AnyDesk.
    "round46.jsonl": Floor(f1=0.99, fpr=0.007, intent=1.0, target=False, rules=(0.935, 0.08)),
    # Short lures and asks as people type them ("only a phone needed, reply YES", "you have
    # whats?", "Payment method: USDT, weekly"), and their honest twins (session 14).
    "round48.jsonl": Floor(f1=0.995, fpr=0.005, intent=1.0, target=False, rules=(0.955, 0.03)),
    "round50.jsonl": Floor(f1=0.995, fpr=0.005, intent=1.0, target=False, rules=(0.895, 0.045)),
    "fresh_holdout.jsonl": held_out(0.965, rules=(0.96, 0.025)),
    "forum_holdout.jsonl": held_out(0.98, rules=(0.975, 0.005)),
    "round5_holdout.jsonl": held_out(0.99, rules=(0.935, 0.05)),
    "round6_holdout.jsonl": held_out(0.995, rules=(0.93, 0.075)),
    "round7_holdout.jsonl": held_out(0.96, rules=(0.915, 0.045)),
    "round8_holdout.jsonl": held_out(0.99, rules=(0.905, 0.045)),
    "round9_holdout.jsonl": held_out(0.985, rules=(0.91, 0.05), f1=0.99),
    "round10_holdout.jsonl": held_out(0.99, rules=(0.95, 0.025)),
    "round11_holdout.jsonl": held_out(0.97, rules=(0.9, 0.005)),
    "round12_holdout.jsonl": held_out(0.975, rules=(0.895, 0.025)),
    # One flagged message more missed since the model read rounds 30 and 31 (0.994), and
    # one more since the model alone flags no long text the rules found nothing in (0.989).
    "round13_holdout.jsonl": held_out(0.99, rules=(0.86, 0.085), f1=0.985),
    "round14_holdout.jsonl": held_out(0.975, rules=(0.89, 0.065)),
    "round20_holdout.jsonl": held_out(0.985, rules=(0.86, 0.115)),
    "round21_holdout.jsonl": held_out(0.98, rules=(0.895, 0.06)),
    # One Arabic ask fewer since the retrain of session 10 (0.9898).
    "round22_holdout.jsonl": held_out(0.985, rules=(0.855, 0.09), f1=0.985),
    "round23_holdout.jsonl": held_out(0.98, rules=(0.875, 0.07)),
    "round24_holdout.jsonl": held_out(0.985, rules=(0.895, 0.07)),
    "round26_holdout.jsonl": held_out(0.985, rules=(0.88, 0.055)),
    "round27_holdout.jsonl": held_out(0.985, rules=(0.9, 0.055)),
    "round19_holdout.jsonl": held_out(0.985, rules=(0.9, 0.065)),
    "round29_holdout.jsonl": held_out(0.985, rules=(0.895, 0.055)),
    "round30_holdout.jsonl": held_out(0.98, rules=(0.875, 0.075)),
    "round31_holdout.jsonl": held_out(0.985, rules=(0.9, 0.05)),
    "round28_holdout.jsonl": held_out(0.985, rules=(0.905, 0.045)),
    "round32_blind.jsonl": Floor(f1=0.97, fpr=0.02, intent=0.975, target=False),
    "round37_blind.jsonl": Floor(f1=0.96, fpr=0.017, intent=1.0, target=False),
    "round39_blind.jsonl": Floor(f1=0.965, fpr=0.026, intent=1.0, target=False),
    "round41_blind.jsonl": Floor(f1=0.945, fpr=0.022, intent=1.0, target=False),
    "round43_blind.jsonl": Floor(f1=0.94, fpr=0.049, intent=1.0, target=False),
    "round47_blind.jsonl": Floor(f1=0.985, fpr=0.02, intent=1.0, target=False),
    "round49_blind.jsonl": Floor(f1=0.955, fpr=0.008, intent=1.0, target=False),
}
"""Reached with the model blended in: F1 0.99 or more and at most 0.6 % false positives
on every tuned file and on every holdout but round 13's (0.989), all of which the model has
read since session 7 (rounds 19 and 29 to 31 since session 8, round 28 since session 9).
Since session 9 the model alone flags no message over 80 words that the rules found
nothing in (``analyzer.MODEL_ALONE_MAX_WORDS``): that took 14 asks of about 7,000 from
the holdouts the model had learnt by heart, so the floors of rounds 9 and 22 (long
friendly messages) went from 0.995 to 0.99. The rules alone: 1.000 on twelve tuned
files, 0.977 to 0.998 on rounds 13, 15 to 18, 33 and 35, 0.938 on the job posts of round
34 (which the target does not bind: six asks there leave no trace a rule could read
without flagging job posts); on the holdouts, what ``rules`` says (0.856 to 0.976).

The figure that counts is the blind round 32's, written at the start of session 9, like
round 28, before any change: the blend read F1 0.976 (FPR 0.022, category right on
94.2 % of the flagged) then, and 0.976 (0.018, 96.7 %) at the end of that session with
the model trained on 17,275 messages; the rules alone 0.870 (0.072) then, 0.871 (0.068).
Session 10 kept it unread: with round 35 (task scams, recruiter lures, contact asks in job
posts) in the model's data it reads 0.976 (0.022, 96.4 %), one benign message more flagged
(its floor went from 0.018 to 0.022 for that), while the real client texts kept outside the
repository caught three asks more of 35 unread ones (see the note of stop 15).
Session 11 kept it unread and read 0.975 at its end (FPR 0.022, 97.0 %), with the model
averaged over three training orders and round 36 (job posts in other languages) in its
data; one ask more or fewer moves it by 0.0015, so its floor went from 0.975 to 0.97.
Round 37, written blind in session 11 beside round 36, read 0.910 (FPR 0.052, category
95.1 %) before any change of that session and 0.968 (0.010, 95.1 %) at its end; the
rules alone 0.736 (0.208) then, 0.887 (0.057).
Session 12 kept rounds 32 and 37 unread, added rounds 38 (real-world style) and 40 (short
direct asks) to the model's data and wrote rounds 39 and 41 blind beside them. At the end:
round 32 0.975 (FPR 0.022, 97.0 %); round 37 0.945 (0.021), down from 0.968 (0.010) when
the model read round 40 (0.938 then: three job posts more flagged, two of them ones a rule
had found and the model used to clear; one back once "？" ended Chinese sentences); round
39 0.940 (FPR 0.032, category 94.1 %) before any change and 0.964 (0.032, 96.2 %) at the
end, the rules alone 0.867 (0.063) then, 0.884 (0.070); round 41 0.879 (0.050) at the
start of the session, 0.921 (0.043) before its round's changes and 0.954 (0.021, 97.4 %)
at the end, the rules alone 0.867 (0.093) then, 0.886 (0.064). Round 39's false-positive
rate is above the 3 % target: a floor records what the blend does, not what it should.
The 431 unread real client texts kept out of the repository went from F1 0.725 (FPR
0.052) to 0.784 (0.067) over the session.
Session 13 wrote round 43 blind (long posts naming risky things innocently): 0.904 (FPR
0.083) before any change, 0.953 (0.042) at the end. Session 14 wrote rounds 47 and 49 blind
beside the tuned rounds 46 (real-world style, legitimate messages that look like scams), 48
and 50 (short lures and asks as people type them): round 47 read 0.981 (0.019) before any
change, round 49 0.887 (0.007, recall 0.80) before its round's changes. At the end (the
model trained on round 50 too): round 49 0.958 (0.007), round 47 0.986 (0.019), round 43
0.943 (0.048), round 39 0.972 (0.019), round 37 0.961 (0.016), round 41 0.946 (0.021),
round 32 0.973 (0.018). The retrain's own noise is as large as most of these moves: the
same data trained from other seeds (11 to 13 instead of 1 to 3) changed 12 of the 1,927
blind verdicts, and round 43 read 0.953 (0.036) instead of 0.963 (0.030); six orders
averaged instead of three still changed 10 between two seed sets. Round 43 went 0.963
(0.030) after round 46 was read, 0.958 (0.036) after round 48 and 0.943 (0.048) after round
50, with no lexicon change aimed at it: its floor follows, and a file of 260 moved by one or
two messages says little by itself. Tuned rounds are trained on whatever a blind file
reads; choosing the data by a blind file's figure would tune on it.
Round 28 was the blind file of session 8: the shipped blend read F1 0.979 (FPR 0.014,
category right on 95.2 % of the flagged) before any change of that session, 0.984
(0.014) at its end; the rules alone 0.907 (0.043).
Round 19 was the blind file of session 7: F1 0.962 (0.032) at its start, 0.978 (0.025)
once the model read the holdouts and rounds 20 to 24, 0.982 (0.018) with rounds 26 and 27;
the rules alone 0.902 (0.061). Round 14 was the blind file before it: 0.937 (0.040) at the
end of session 6, 0.973 (0.007) with the session-7 settings and a model that had read
everything but it."""
THREAD_FLOORS = {
    "threads.jsonl": 1.0,
    "threads25.jsonl": 0.92,
    "threads_holdout.jsonl": 0.97,
    "threads_blind.jsonl": 0.94,
    "threads28_blind.jsonl": 0.93,
    "threads32_blind.jsonl": 0.95,
}
"""Share of thread messages whose escalation action matches. With the model of session 14
(19,930 messages, rounds 46, 48 and 50 added): 126 of 134, 127 of 136, 125 of 131 (378 of
401 blind steps, 94.3 %, against 376 at the start of the session; 381 with rounds 46 and
48 only), 126 of 126, 74 of 75, and 125 of 134 on threads25 (127 before round 48: a
disguised address closing a long brief that the model finds ordinary, p 0.04), so its
floor went to 0.92; threads28_blind and threads32_blind went back down to 0.93 and 0.95
after the retrain on round 50 (two and one steps). With the model of session 13 (19,136
messages, rounds 42, 44 and 45 added): 124 of 131, 126 of 136, 126 of 134 (376 of 401
blind steps, 93.8 %, against 378 at the start of the session; with rounds 42 and 44 only,
379), 126 of 126, 74 of 75, 127 of 134. Round 45 cost threads28_blind four steps, so its
floor went to 0.925, for blind round 43 at 4.2 % false positives instead of 5.4 % and
blind round 37 at F1 0.968 instead of 0.960. With the model of session 12 (18,096
messages, round 38 added): 122 of 131, 129 of 136, 126 of 134 (377 of 401 blind steps,
94.0 %, against 381: two steps fewer on two files, so their floors went to 0.93 and 0.94),
126 of 126, 74 of 75 (an ultimatum naming a channel now reads as the ask it repeats), 127
of 134. With the model of session 11 (17,830 messages, three training orders averaged):
124 of 131, 129 of 136, 128 of 134, 126 of 126, 73 of 75 held back and 127 of 134 written
to find errors; 381 of 401 blind steps against 378, so threads28_blind went back up to
0.945 and threads_blind to 0.95. With the model of session 10 (17,575 messages): 124 of
131 on the threads of session 9, 127 of 136 on those of session 8, 127 of 134 on those of
session 7, 126 of 126, 73 of 75 held back, 126 of 134 written to find errors; 378 of 401
blind steps, against 379 before the retrain: the model's moves cancel out over the three
blind files, so threads28_blind went down to 0.93 and the others up. With the model of
session 9 (trained on 17,275 messages): 122 of 131 on the threads written blind at the
start of session 9 (124 before that session's changes, 112 with the rules alone); 131 of
136 on those of session 8 (120 with the rules alone); 126 of 134 on those of session 7
(127 at the end of session 8); 126 of 126 on the tuned threads; 71 of 75 on the held-back
ones (73 at the end of session 8, 72 with the rules alone); 127 of 134 on the threads
written to find errors. A retrain moves a thread file by two to four steps either way, as
one missed first ask also changes the next step: the floors of threads_holdout (0.97) and
threads_blind (0.945) went down by such a move in session 9, which the model's data for
real scams and job posts (rounds 33 and 34) and the blind files' gains were worth."""


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        pytest.skip(f"no corpus at {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def reports(shipped_analyzer: Analyzer) -> dict[str, EvalReport]:
    return {name: evaluate(shipped_analyzer, _read(CORPUS_DIR / name)) for name in FLOORS}


@pytest.mark.parametrize("name", [name for name, floor in FLOORS.items() if floor.target])
def test_rules_alone_reach_the_target(analyzer: Analyzer, name: str) -> None:
    _assert_target(evaluate(analyzer, _read(CORPUS_DIR / name)), category=False)


@pytest.mark.parametrize("name", [name for name, floor in FLOORS.items() if floor.rules])
def test_rules_alone_keep_their_floor_on_the_holdouts(analyzer: Analyzer, name: str) -> None:
    """The lexicons' regression check on wording they were never tuned on."""
    report, rules = evaluate(analyzer, _read(CORPUS_DIR / name)), FLOORS[name].rules
    assert rules is not None
    assert report.f1 >= rules[0], format_report(report)
    assert report.false_positive_rate <= rules[1], format_report(report)


@pytest.mark.parametrize("name", [name for name, floor in FLOORS.items() if floor.target])
def test_target(reports: dict[str, EvalReport], name: str) -> None:
    """The product target: F1 >= 0.95, at most 3% of benign messages flagged."""
    _assert_target(reports[name])


def _assert_target(report: EvalReport, category: bool = True) -> None:
    assert report.f1 >= TARGET_F1, format_report(report)
    assert report.false_positive_rate <= TARGET_FPR, format_report(report)
    if category:
        assert report.category_accuracy >= TARGET_CATEGORY, format_report(report)


@pytest.mark.parametrize("name", list(FLOORS))
def test_no_regression(reports: dict[str, EvalReport], name: str) -> None:
    """F1, the false-positive rate and the intent marks never fall below what was reached."""
    report, floor = reports[name], FLOORS[name]
    assert report.f1 >= floor.f1, format_report(report)
    assert report.false_positive_rate <= floor.fpr, format_report(report)
    intent_right = report.hesitant_correct + report.insisting_correct
    intent_total = report.hesitant_total + report.insisting_total
    assert intent_total == 0 or intent_right / intent_total >= floor.intent, format_report(report)


@pytest.mark.parametrize("name", list(THREAD_FLOORS))
def test_thread_escalation(shipped_analyzer: Analyzer, name: str) -> None:
    """Each thread message gets the expected action given the thread's earlier flagged ones."""
    right = total = 0
    wrong: list[str] = []
    for thread in _read(CORPUS_DIR / name):
        earlier: list[str] = []
        for message in thread["messages"]:
            assessment, action = respond(shipped_analyzer.assess(message["text"]), earlier)
            total += 1
            if action == message["expected_action"]:
                right += 1
            else:
                wrong.append(
                    f"{thread['id']}: expected {message['expected_action']}, got {action}:"
                    f" {message['text']!r}"
                )
            if assessment.flagged:
                earlier.append(action)
    assert total, "no thread messages"
    assert right / total >= THREAD_FLOORS[name], f"{right}/{total}\n" + "\n".join(wrong)
