"""Safety promises that hold by construction: nothing sends mail, folders are read-only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parents[2]
SOURCES = sorted(
    [*ROOT.glob("daemon/*.py"), *ROOT.glob("detectors/*.py"), *ROOT.glob("config/*.py")]
)
SENDING_MODULES = {"smtplib", "smtpd", "aiosmtplib", "email.mime.application"}


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_module_can_send_mail() -> None:
    """No source file imports an SMTP client or calls sendmail."""
    assert SOURCES
    for path in SOURCES:
        text = path.read_text()
        tree = ast.parse(text)
        assert not (_imports(tree) & SENDING_MODULES), path
        assert "sendmail" not in text and "send_message" not in text, path


def test_folders_are_only_selected_read_only() -> None:
    """Every select_folder call passes readonly=True, so no flag can change on client mail."""
    calls = 0
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "select_folder":
                calls += 1
                readonly = [k for k in node.keywords if k.arg == "readonly"]
                assert readonly and isinstance(readonly[0].value, ast.Constant), path
                assert readonly[0].value.value is True, path
    assert calls >= 1


def test_bodies_are_fetched_with_peek_only() -> None:
    """Message bodies are fetched with BODY.PEEK[], never BODY[] or RFC822 (which set \\Seen)."""
    text = (ROOT / "daemon" / "mailbox.py").read_text()
    assert '"BODY.PEEK[]' in text
    assert '["BODY[]"]' not in text and '"RFC822"' not in text


def test_library_types_stay_in_their_adapters() -> None:
    """imapclient, mail-parser and jinja2 are each imported by one module only."""
    owners = {
        "imapclient": "mailbox.py",
        "mailparser": "notification.py",
        "jinja2": "drafts.py",
    }
    for path in SOURCES:
        imported = {name.split(".")[0] for name in _imports(ast.parse(path.read_text()))}
        for library, owner in owners.items():
            if library in imported:
                assert path.name == owner, f"{path} imports {library}"
