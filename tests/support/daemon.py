"""Runs the real `onplatform run` for a test, its output in a file, never left behind."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from onplatform.detectors.matcher_cache import CACHE_ENV

ONPLATFORM = str(Path(sys.executable).parent / "onplatform")
STARTUP_SECONDS = 60
"""How long a test waits for a new daemon's first sign of work. Without a cached build
it compiles every lexicon first (about 10 s of CPU), which a loaded 2-core machine can
stretch several times; systemd allows 120 s (TimeoutStartSec)."""


def bare_env(**extra: str) -> dict[str, str]:
    """The environment a product process gets in a test: a plain PATH and the suite's
    matcher cache (tests/conftest.py), nothing else of the caller's."""
    return {"PATH": "/usr/bin:/bin", CACHE_ENV: os.environ.get(CACHE_ENV, ""), **extra}


@contextlib.contextmanager
def running_daemon(
    config: Path, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The daemon on ``config``; killed on the way out if the test did not stop it."""
    with log.open("w") as out:
        # A file, not a pipe: nothing has to drain it while the test waits.
        daemon = subprocess.Popen(
            [ONPLATFORM, "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=bare_env(**(env or {})),
        )
    try:
        yield daemon
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
