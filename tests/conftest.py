"""Shared fixtures: one private Dovecot for the whole session, emptied per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from onplatform.detectors.matcher_cache import CACHE_ENV
from tests.support.dovecot import DovecotEndpoint, PrivateDovecot

# The suite's own matcher cache, shared by every process it starts (they inherit it, see
# tests/support/daemon.py): one build per run, and the user's ~/.cache is left alone.
_MATCHER_CACHE = tempfile.mkdtemp(prefix="onplatform-test-cache-")
os.environ.setdefault(CACHE_ENV, _MATCHER_CACHE)


@pytest.fixture(scope="session", autouse=True)
def _remove_the_matcher_cache() -> Iterator[None]:
    yield
    shutil.rmtree(_MATCHER_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _logging_set_up_by_a_test_stays_in_it() -> Iterator[None]:
    """A test that runs the CLI in-process sets logging up on pytest's captured stdout,
    which is closed once that test ends: the next test must not log into it."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[PrivateDovecot]:
    server = PrivateDovecot()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap(dovecot: PrivateDovecot) -> PrivateDovecot:
    """The session's server with an empty mailbox."""
    dovecot.reset()
    return dovecot


def write_config(
    tmp_path: Path,
    endpoint: DovecotEndpoint,
    *,
    password: str | None = None,
    tls: str = "none",
    ca_file: Path | None = None,
    folders: tuple[str, ...] = ("INBOX",),
    host: str | None = None,
    extra: str = "",
) -> Path:
    secret = tmp_path / "password"
    secret.write_text((password if password is not None else endpoint.password) + "\n")
    os.chmod(secret, 0o600)
    port = endpoint.imaps_port if tls == "implicit" else endpoint.port
    lines = [
        "[[accounts]]",
        'name = "work"',
        f'host = "{host or endpoint.host}"',
        f"port = {port}",
        f'tls = "{tls}"',
        f'username = "{endpoint.username}"',
        f'password_file = "{secret}"',
        "folders = [" + ", ".join(f'"{f}"' for f in folders) + "]",
        "poll_interval = 1",
        "timeout = 10",
    ]
    if ca_file is not None:
        lines.append(f'ca_file = "{ca_file}"')
    lines += [
        "",
        "[state]",
        f'path = "{tmp_path / "state.sqlite3"}"',
        "",
        "[drafts]",
        'freelancer_name = "Sam Carter"',
        'signature = "Sam Carter, web developer"',
        "",
        "[logging]",
        'format = "json"',
        extra,
    ]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path
