"""Domain errors. Every user-facing failure is a SeqdbError with a one-line message.

The CLI's single error handler (`seqdb.cli.main`) prints `error: <message>` on stderr and
exits with `exit_code`; a traceback only with SEQDB_DEBUG=1.
"""

from __future__ import annotations


class SeqdbError(Exception):
    """Base class: the message is shown to the user as one line."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # always one line

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
