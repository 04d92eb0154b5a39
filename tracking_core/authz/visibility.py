"""What a caller may read, as one SQL condition per resource type, for the search queries.

A `Visibility` is handed to the store's search functions (`visible=`); None means everything
(an admin, or a server without authentication). The condition goes into the same SELECT that
pages, so every page is full and a page token never skips or repeats what the caller may see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement


@dataclass(frozen=True)
class Scope:
    """Readable: every resource but `hidden` (default readable), or only `only` (default not)."""

    hidden: frozenset[str] = frozenset()
    only: frozenset[str] | None = None

    def allows(self, rid: str) -> bool:
        return rid in self.only if self.only is not None else rid not in self.hidden

    def clause(self, column: sa.ColumnElement[Any], convert: Callable[[str], Any] = str) -> ColumnElement[bool] | None:
        if self.only is not None:
            values = _converted(self.only, convert)
            return column.in_(values) if values else sa.false()
        values = _converted(self.hidden, convert)
        return column.not_in(values) if values else None


def _converted(ids: Iterable[str], convert: Callable[[str], Any]) -> list[Any]:
    out = []
    for rid in sorted(ids):
        try:
            out.append(convert(rid))
        except ValueError:  # a grant on an id that cannot exist (e.g. a non-numeric experiment id)
            continue
    return out


@dataclass(frozen=True)
class Visibility:
    experiments: Scope
    models: Scope

    def experiment_clause(self, column: sa.ColumnElement[Any]) -> ColumnElement[bool] | None:
        return self.experiments.clause(column, int)

    def model_clause(self, column: sa.ColumnElement[Any]) -> ColumnElement[bool] | None:
        return self.models.clause(column)

    def readable_experiments(self, experiment_ids: Iterable[int]) -> list[int]:
        return [e for e in experiment_ids if self.experiments.allows(str(e))]


def where(clause: ColumnElement[bool] | None) -> tuple[ColumnElement[bool], ...]:
    """For `.where(*where(...))`: nothing when the caller may see everything."""
    return () if clause is None else (clause,)
