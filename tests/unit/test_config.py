"""Config loading: typed settings, and one-line errors that name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from onplatform.config.schema import load_config, parse_settings
from onplatform.daemon.errors import ConfigError
from onplatform.detectors.analyzer import MODEL_WEIGHT

EXAMPLE = Path(__file__).parents[2] / "config" / "example.toml"
BASE = {
    "accounts": [
        {"name": "a", "host": "imap.example.com", "username": "u", "password_file": "/run/pw"}
    ]
}


def with_account(**changes: object) -> dict[str, object]:
    account = {**BASE["accounts"][0], **changes}
    return {"accounts": [{k: v for k, v in account.items() if v is not None}]}


def test_example_config_documents_valid_settings() -> None:
    """The shipped example loads, with the defaults it documents."""
    settings = load_config(EXAMPLE)
    account = settings.accounts[0]
    assert account.tls == "implicit" and account.port == 993
    assert account.folders == ("INBOX",)
    assert settings.detectors.threshold == 0.5


def test_defaults() -> None:
    """Unset keys get their documented defaults; the state path follows $STATE_DIRECTORY."""
    settings = parse_settings(BASE, environ={"STATE_DIRECTORY": "/var/lib/onplatform"})
    assert settings.state.path == Path("/var/lib/onplatform/state.sqlite3")
    assert settings.accounts[0].poll_interval == 60.0
    assert settings.accounts[0].drafts_folder is None
    assert settings.dry_run is False
    assert settings.detectors.workers is None  # "auto": one per core
    assert parse_settings({**BASE, "detectors": {"workers": 0}}).detectors.workers == 0
    model = settings.detectors.model
    assert model.enabled and model.weight == MODEL_WEIGHT and model.path is None


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (with_account(pasword="x"), "accounts[0].pasword: unknown key"),
        ({**BASE, "stat": {}}, "stat: unknown key"),
        (with_account(tls="ssl"), "accounts[0].tls: must be one of"),
        (with_account(tls="none"), 'accounts[0].tls: "none" sends the password in clear'),
        (with_account(port="993"), "accounts[0].port: expected an integer, got str"),
        (with_account(port=0), "accounts[0].port: 0 is outside 1..65535"),
        (with_account(password_file=None), "set exactly one of password_file"),
        (with_account(password_command=["pass"]), "set exactly one of password_file"),
        (with_account(folders=[]), "accounts[0].folders: name at least one folder"),
        (with_account(poll_interval=0), "accounts[0].poll_interval: 0.0 is outside"),
        ({"accounts": []}, "accounts: at least one"),
        ({**BASE, "logging": {"level": "loud"}}, "logging.level: must be"),
        ({**BASE, "detectors": {"threshold": 2}}, "detectors.threshold: 2.0 is outside"),
        (
            {**BASE, "detectors": {"model": {"weight": 1.5}}},
            "detectors.model.weight: 1.5 is outside 0.0..1.0",
        ),
        ({**BASE, "detectors": {"model": {"wieght": 0.5}}}, "detectors.model.wieght: unknown key"),
        (
            {**BASE, "detectors": {"model": {"enabled": "no"}}},
            "detectors.model.enabled: expected true or false",
        ),
        ({**BASE, "detectors": {"workers": "many"}}, 'detectors.workers: expected "auto"'),
        ({**BASE, "detectors": {"workers": -1}}, 'detectors.workers: expected "auto"'),
        (
            {**BASE, "detectors": {"phrases": {"enabled": "yes"}}},
            "detectors.phrases.enabled: expected true or false",
        ),
        (
            {"accounts": [BASE["accounts"][0], BASE["accounts"][0]]},
            "accounts[1].name: duplicate account name",
        ),
    ],
)
def test_errors_name_the_key_path(document: dict[str, object], message: str) -> None:
    """Each mistake is one line naming where it is."""
    with pytest.raises(ConfigError) as caught:
        parse_settings(document)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_plain_imap_allowed_on_loopback() -> None:
    """tls = "none" is accepted for 127.0.0.1 and localhost, with port 143 by default."""
    for host in ("127.0.0.1", "localhost", "::1"):
        settings = parse_settings(
            {"accounts": [{**BASE["accounts"][0], "host": host, "tls": "none"}]}
        )
        assert settings.accounts[0].port == 143


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    """A syntax error is reported with the file and the line."""
    path = tmp_path / "bad.toml"
    path.write_text('[[accounts]]\nname = "a\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(path) in str(caught.value) and "line 2" in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """An absent config file exits like any other config error."""
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml")
    assert caught.value.exit_code == 78
