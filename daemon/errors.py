"""The exceptions onplatform raises; each class says what the daemon does about it."""

from __future__ import annotations


class OnplatformError(Exception):
    """Base of every error onplatform raises on purpose."""


class ConfigError(OnplatformError):
    """The configuration is wrong: fatal at start, the old one is kept on reload."""

    exit_code = 78  # EX_CONFIG; the unit's RestartPreventExitStatus names it


class SecretError(ConfigError):
    """A password could not be read from its file, command or credential."""


class MailboxError(OnplatformError):
    """The IMAP server failed or went away: retried on the next poll."""


class AuthenticationError(MailboxError):
    """The server refused the login: reported once per change, retried later."""


class TLSVerificationError(MailboxError):
    """The server's certificate could not be verified."""


class MessageError(OnplatformError):
    """One message could not be handled: it is parked, the others go on."""


class DraftError(OnplatformError):
    """A draft could not be rendered or stored: retried on the next poll."""
