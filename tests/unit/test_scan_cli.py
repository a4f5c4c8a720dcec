"""The `onplatform scan` contract other tools rely on."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from onplatform.daemon.cli import _explain
from onplatform.daemon.pipeline import Verdict
from onplatform.detectors.analyzer import MODEL_ALONE_MAX_WORDS, Assessment
from tests.support.daemon import ONPLATFORM, bare_env

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mail"
CORPUS = Path(__file__).parents[3] / "shared" / "corpora" / "mail-parser-tests"
KEYS = {"id", "flagged", "category", "score", "action", "findings"}


def scan(*args: str, stdin: str = "") -> tuple[int, list[dict[str, Any]]]:
    done = subprocess.run(
        [ONPLATFORM, "scan", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=bare_env(ONPLATFORM_CONFIG=""),
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def test_stdin_jsonl_follows_the_contract() -> None:
    """One line per input, in order, with the contract's keys and value ranges."""
    lines = [
        {"id": 1, "text": "Can I pay you on PayPal directly to avoid the fees?"},
        {"id": "b", "text": "Please send the updated logo files when ready."},
        {"id": 3, "text": "Buy the software license from our vendor, we reimburse you."},
    ]
    code, out = scan("--stdin-jsonl", stdin="\n".join(json.dumps(x) for x in lines))
    assert code == 0
    assert [o["id"] for o in out] == [1, "b", 3]
    for record in out:
        assert set(record) == KEYS
        assert 0 <= record["score"] <= 1
        assert record["action"] in {"decline", "encourage", "report", "none"}
        for finding in record["findings"]:
            assert set(finding) == {"detector", "code", "category", "score", "evidence"}
    assert [o["flagged"] for o in out] == [True, False, True]
    assert [o["category"] for o in out] == ["offplatform_payment", None, "scam"]
    assert [o["action"] for o in out] == ["decline", "none", "report"]


def test_shared_client_escalates_and_others_are_judged_alone() -> None:
    """Inputs with one `client` climb the ladder; inputs without it each start fresh."""
    ask = "Add me on WhatsApp please"
    lines = [{"id": i, "text": ask, **({"client": "c1"} if i < 2 else {})} for i in range(4)]
    code, out = scan("--stdin-jsonl", stdin="\n".join(json.dumps(x) for x in lines))
    assert code == 0
    assert [o["action"] for o in out] == ["decline", "report", "decline", "decline"]


def test_bad_jsonl_line_is_reported_in_place() -> None:
    """A broken line yields an error record at its place, and a non-zero exit."""
    code, out = scan("--stdin-jsonl", stdin='{"id": 1, "text": "hi"}\nnot json\n')
    assert code == 1
    assert out[0]["id"] == 1 and "error" in out[1] and "line 2" in out[1]["error"]


def test_eml_files_and_the_mail_parser_corpus_scan_without_crash() -> None:
    """Every fixture and every mail of mail-parser's corpus gives one JSON line."""
    files = sorted(str(p) for p in FIXTURES.glob("*.eml"))
    if CORPUS.is_dir():
        files += sorted(str(p) for p in CORPUS.glob("mail_*"))
    code, out = scan(*files)
    assert [o["id"] for o in out] == files
    refused = [o for o in out if "error" in o]
    # Only Outlook .msg containers are refused, by name, and they set the exit status.
    assert all(".msg" in o["error"] for o in refused)
    assert code == (1 if refused else 0)
    platform = [o for o in out if "/platform_" in o["id"]]
    assert platform and all(o["action"] == "none" for o in platform)


@pytest.mark.parametrize("flag", ["--explain"])
def test_explain_shows_evidence_and_adjustments(flag: str) -> None:
    """--explain prints the normalised text, evidence on the original and score moves."""
    done = subprocess.run(
        [ONPLATFORM, "scan", "--stdin-jsonl", flag],
        capture_output=True,
        text=True,
        timeout=60,
        input=json.dumps({"id": "x", "text": "We need a P.a.y.P.a.l checkout integration API"}),
        check=False,
    )
    assert "normalised: we need a paypal checkout integration api" in done.stdout
    assert "context.job_topic" in done.stdout
    # The default config blends the shipped model's opinion in, and says so.
    assert re.search(r"^blend: rules 0\.\d{3}, model 0\.\d{3} -> 0\.\d{3}$", done.stdout, re.M)


def test_eval_prints_scores_and_names_bad_lines(tmp_path: Path) -> None:
    """`onplatform eval` reports per-label scores; a bad line is named by file and line."""
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {
                    "id": "p",
                    "text": "Pay me via PayPal directly to skip the fees",
                    "label": "offplatform_payment",
                    "language": "en",
                },
                {
                    "id": "b",
                    "text": "The logo looks great, thanks!",
                    "label": "benign",
                    "language": "en",
                },
            ]
        )
        + "\n"
    )
    done = subprocess.run(
        [ONPLATFORM, "eval", str(corpus)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"flagged \(all\)\s+2\s+1\.000\s+1\.000\s+1\.000\s+0\.000", done.stdout)
    corpus.write_text('{"id": 1, "text": "x", "label": "spam"}\n')
    done = subprocess.run(
        [ONPLATFORM, "eval", str(corpus)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert f"{corpus}:1: label must be one of" in done.stderr


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    """`onplatform scan --stdin-jsonl ... | head -1` ends quietly when head exits."""
    lines = "\n".join(json.dumps({"id": i, "text": "Pay me on PayPal."}) for i in range(3000))
    process = subprocess.Popen(
        [ONPLATFORM, "scan", "--stdin-jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=bare_env(ONPLATFORM_CONFIG=""),
    )
    assert process.stdin is not None and process.stdout is not None
    stdin = process.stdin

    def feed() -> None:
        # From a thread: the output fills its pipe long before the input is all read.
        with contextlib.suppress(BrokenPipeError):
            stdin.write(lines.encode())
            stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    assert json.loads(process.stdout.readline())["id"] == 0
    process.stdout.close()  # what head does after its first line
    assert process.stderr is not None
    errors = process.stderr.read()
    assert process.wait(timeout=60) == 1
    writer.join(timeout=10)
    assert b"Traceback" not in errors, errors.decode()[-500:]


@pytest.mark.parametrize("withheld", [True, False])
def test_explain_says_when_the_model_alone_was_not_enough(withheld: bool) -> None:
    """A long text only the model would flag shows why it is not flagged."""
    assessment = Assessment(
        False, None, 0.0, (), rules_score=0.0, model_score=0.97, model_withheld=withheld
    )
    out = StringIO()
    _explain(out, "x", "a long job post", Verdict(assessment, "none"))
    said = f"the model alone flags no text over {MODEL_ALONE_MAX_WORDS} words" in out.getvalue()
    assert said is withheld
