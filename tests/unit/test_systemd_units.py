"""The shipped systemd units: valid, hardened, and wired to the daemon's exit codes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parents[2] / "systemd"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")
MAX_EXPOSURE = 1.5


def _installed_copy(tmp_path: Path, name: str) -> Path:
    """The unit with ExecStart pointing at this checkout's console script, as installed."""
    script = Path(sys.executable).parent / "onplatform"
    text = (UNITS / name).read_text().replace("/opt/onplatform/.venv/bin/onplatform", str(script))
    path = tmp_path / name
    path.write_text(text)
    return path


@needs_analyze
@pytest.mark.parametrize(
    ("name", "instance"),
    [
        ("onplatform.service", "onplatform.service"),
        ("onplatform@.service", "onplatform@work.service"),
    ],
)
def test_units_verify_clean(tmp_path: Path, name: str, instance: str) -> None:
    """`systemd-analyze verify` has nothing to say about either unit."""
    _installed_copy(tmp_path, name)
    done = subprocess.run(
        [str(ANALYZE), "verify", str(tmp_path / instance)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


@needs_analyze
@pytest.mark.parametrize("name", ["onplatform.service", "onplatform@.service"])
def test_exposure_score_is_low(name: str) -> None:
    """The offline security score stays at or below 1.5."""
    done = subprocess.run(
        [str(ANALYZE), "security", "--offline=true", str(UNITS / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert match, done.stdout[-500:] + done.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE


@pytest.mark.parametrize("name", ["onplatform.service", "onplatform@.service"])
def test_unit_contract(name: str) -> None:
    """Notify type, watchdog, no restart on a config error, credentials, state and cache
    directories."""
    text = (UNITS / name).read_text()
    for line in (
        "Type=notify",
        "RestartPreventExitStatus=78",
        "Restart=on-failure",
        "StateDirectory=",
        "CacheDirectory=",
        "ConfigurationDirectory=",
        "LoadCredential=",
        "WatchdogSec=",
        "TimeoutStopSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ):
        assert line in text
    assert re.search(r"^User=onplatform$", text, re.MULTILINE)
