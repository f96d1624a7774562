"""Domain errors. Every user-facing failure is a SeqdbError with a one-line message.

The CLI's single error handler (`seqdb.cli.main`) prints `error: <message>` on stderr and
exits with `exit_code`; a traceback only with SEQDB_DEBUG=1.
"""

from __future__ import annotations

import re


class SeqdbError(Exception):
    """Base class: the message is shown to the user as one line."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(redact(" ".join(str(message).split())))  # always one line, never a password

    @property
    def message(self) -> str:
        return self.args[0]


class ConfigError(SeqdbError):
    """Bad YAML, bad field value, bad search space."""

    exit_code = 2


class DataError(SeqdbError):
    """Bad or unusable input data."""

    exit_code = 3


class DatabaseError(SeqdbError):
    """Bad URL, unreachable server, wrong schema revision."""

    exit_code = 4


class SchemaRevisionError(DatabaseError):
    """The database is not at the revision this seqdb expects."""


class ProjectError(SeqdbError):
    """Project folder problems (init into a non-empty folder, missing project)."""

    exit_code = 5


class NotFoundError(SeqdbError):
    """A named experiment, study, trial, artifact ... does not exist."""

    exit_code = 6


class TrainingError(SeqdbError):
    """Training failed in a way the user must act on (corrupt checkpoint, ...)."""

    exit_code = 7


# --------------------------------------------------------------------------------------
# redaction: THE one place passwords are removed from text (every SeqdbError message,
# every log record of seqdb, every URL shown)
# --------------------------------------------------------------------------------------
MASK = "***"
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*):(?P<pw>[^\s@'\"]*)@")
_KEYWORD_PASSWORD = re.compile(r"(?P<head>password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'?|\"[^\"]*\"?|[^\s'\",;&)]+)", re.IGNORECASE)
_MAPPING_PASSWORD = re.compile(r"(?P<head>['\"]?password['\"]?\s*:\s*)(?P<pw>'[^']*'|\"[^\"]*\"|[^\s,}]+)", re.IGNORECASE)
_KNOWN_SECRETS: set[str] = set()
MIN_BARE_SECRET = 4  # shorter passwords are masked only in URL / keyword form


def remember_secret(secret: str | None) -> None:
    """Mask `secret` wherever it appears from now on (a password of a URL we parsed)."""
    if secret and len(secret) >= MIN_BARE_SECRET:
        _KNOWN_SECRETS.add(secret)
        from urllib.parse import quote

        _KNOWN_SECRETS.add(quote(secret, safe=""))


def redact(text: str) -> str:
    """`text` with every password masked (URL, libpq keyword and mapping forms, known secrets)."""
    text = str(text)
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _KEYWORD_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)
    return _MAPPING_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)
