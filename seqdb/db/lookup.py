"""One lookup for "this row, or a one-line NotFoundError that says where to look"."""

from __future__ import annotations

from typing import Any, Optional, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from seqdb.errors import NotFoundError

T = TypeVar("T")

# table -> the command that lists what exists (the default hint of find_or_raise)
LIST_HINTS = {
    "study": "see `seqdb study list`",
    "trial": "see `seqdb trial list --study ...`",
    "worker": "see `seqdb worker list`",
}


def find_or_raise(session: Session, model: type[T], key: Any, *, column: Any = None, hint: Optional[str] = None) -> T:
    """The `model` row whose primary key (or `column`) equals `key`.

    Raises NotFoundError("study 7 does not exist; see `seqdb study list`"); `hint` replaces
    the table's default hint ("" for none)."""
    if column is None:
        row = session.get(model, key)
    else:
        row = session.execute(sa.select(model).where(column == key)).scalars().first()
    if row is None:
        table = model.__tablename__
        hint = LIST_HINTS.get(table, "") if hint is None else hint
        raise NotFoundError(f"{table} {key!r} does not exist" + (f"; {hint}" if hint else ""))
    return row
