"""Passwords come from a file, a command or a systemd credential, never the config."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from onplatform.config.schema import AccountSettings
from onplatform.daemon.errors import SecretError

Warn = Callable[[str], None]


def world_readable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IROTH | stat.S_IWOTH))
    except OSError:
        return False


def read_password(
    account: AccountSettings,
    index: int,
    environ: Mapping[str, str] = os.environ,
    warn: Warn | None = None,
) -> str:
    where = f"accounts[{index}]"
    if account.password_file is not None:
        path = account.password_file
        if warn is not None and world_readable(path):
            warn(f"{where}.password_file: {path} is readable by other users (chmod 600)")
        try:
            return _first_line(path.read_text(encoding="utf-8"), f"{where}.password_file")
        except OSError as err:
            raise SecretError(
                f"{where}.password_file: cannot read {path}: {err.strerror or err}"
            ) from err
    if account.password_command is not None:
        try:
            done = subprocess.run(
                account.password_command,
                capture_output=True,
                timeout=30,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise SecretError(f"{where}.password_command: could not run: {err}") from err
        if done.returncode != 0:
            # The command's output may hold the secret: report only the status.
            raise SecretError(f"{where}.password_command: exited with status {done.returncode}")
        return _first_line(done.stdout.decode("utf-8", "replace"), f"{where}.password_command")
    name = account.password_credential or ""
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise SecretError(
            f"{where}.password_credential: $CREDENTIALS_DIRECTORY is not set "
            "(run under systemd with LoadCredential=)"
        )
    path = Path(directory) / name
    try:
        return _first_line(path.read_text(encoding="utf-8"), f"{where}.password_credential")
    except OSError as err:
        raise SecretError(
            f"{where}.password_credential: cannot read credential {name!r}: {err.strerror or err}"
        ) from err


def _first_line(text: str, where: str) -> str:
    secret = text.splitlines()[0] if text else ""
    if not secret:
        raise SecretError(f"{where}: the password is empty")
    return secret
