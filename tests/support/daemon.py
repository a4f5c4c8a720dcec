"""Runs the real `onplatform run` for a test, its output in a file, never left behind."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ONPLATFORM = str(Path(sys.executable).parent / "onplatform")
STARTUP_SECONDS = 60
"""How long a test waits for a new daemon's first sign of work. It compiles every
lexicon first (about 9 s of CPU), which a loaded 2-core machine can stretch several
times; systemd allows 120 s (TimeoutStartSec)."""


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
            env={"PATH": "/usr/bin:/bin", **(env or {})},
        )
    try:
        yield daemon
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
