"""Passwords from a file, a command or a systemd credential; never echoed in errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from onplatform.config.schema import AccountSettings
from onplatform.daemon.credentials import read_password
from onplatform.daemon.errors import SecretError


def account(**changes: object) -> AccountSettings:
    base: dict[str, object] = dict(name="a", host="h", port=993, tls="implicit", username="u")
    base.update(changes)
    return AccountSettings(**base)  # type: ignore[arg-type]


def test_file_first_line_and_world_readable_warning(tmp_path: Path) -> None:
    """The first line is the password; a file others can read gives a warning."""
    path = tmp_path / "pw"
    path.write_text("s3cret\nignored\n")
    os.chmod(path, 0o644)
    warnings: list[str] = []
    assert read_password(account(password_file=path), 0, warn=warnings.append) == "s3cret"
    assert warnings and "accounts[0].password_file" in warnings[0]
    os.chmod(path, 0o600)
    warnings.clear()
    read_password(account(password_file=path), 0, warn=warnings.append)
    assert warnings == []


def test_command_output_and_failure_without_leak() -> None:
    """A command's stdout is the password; when it fails, its output is not repeated."""
    ok = account(password_command=("printf", "from-command\n"))
    assert read_password(ok, 0) == "from-command"
    failing = account(password_command=("sh", "-c", "echo leaked-secret; exit 3"))
    with pytest.raises(SecretError) as caught:
        read_password(failing, 2)
    assert str(caught.value) == "accounts[2].password_command: exited with status 3"


def test_systemd_credential(tmp_path: Path) -> None:
    """A credential is read from $CREDENTIALS_DIRECTORY; without it the error says why."""
    (tmp_path / "imap").write_text("cred-pass")
    settings = account(password_credential="imap")
    assert (
        read_password(settings, 0, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)}) == "cred-pass"
    )
    with pytest.raises(SecretError, match="CREDENTIALS_DIRECTORY is not set"):
        read_password(settings, 0, environ={})
