"""Search pages of registered models and model versions rendered as JSON by SQLite itself.

A page of a thousand versions cost more in Python (a Row, a tags array parsed from its
aggregate, a dict, then JSON text again) than in SQL, and a model page paid a second query for
its latest versions. On SQLite the page query returns each message as finished JSON text
instead, latest versions, tags and aliases included, and the texts travel to the response as
`orjson.Fragment`s, untouched.

Each message is spelled out with `json_object` and `json_quote` (which escape exactly as orjson
does) so that fields MLflow leaves out when unset stay out, in the order registry_render.py
writes them: both paths give byte-identical responses (tests/core/test_registry_json.py holds them
to it). Other backends use registry_render.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from tracking_core.store.sqlite_json import member_if_set, member_list, open_object

SUPPORTED = frozenset({"sqlite"})


def _fields(*parts: str) -> str:
    return " || ".join(parts)


def _version_json(mv: str, model_name: str) -> str:
    """A ModelVersion message for the row of `mv` (a model_versions alias), as render_version."""
    tags = member_list(
        "tags",
        "json_object('key', t.\"key\", 'value', t.value)",
        f"FROM model_version_tags AS t WHERE t.registered_model_id = {mv}.registered_model_id "
        f'AND t.version = {mv}.version ORDER BY t."key"',
    )
    aliases = member_list(
        "aliases",
        "json_quote(a.alias)",
        f"FROM registered_model_aliases AS a WHERE a.registered_model_id = {mv}.registered_model_id "
        f"AND a.version = {mv}.version ORDER BY a.alias",
    )
    return _fields(
        open_object(
            ("name", model_name),
            ("version", f"CAST({mv}.version AS TEXT)"),
            ("creation_timestamp", f"{mv}.creation_time"),
            ("last_updated_timestamp", f"{mv}.last_updated_time"),
            ("current_stage", f"{mv}.current_stage"),
            ("description", f"coalesce({mv}.description, '')"),
            ("source", f"{mv}.source"),
            ("status", f"{mv}.status"),
            ("run_link", f"coalesce({mv}.run_link, '')"),
        ),
        member_if_set("run_id", f"{mv}.run_id"),
        member_if_set("user_id", f"{mv}.user_id"),
        member_if_set("status_message", f"{mv}.status_message"),
        member_if_set("model_id", f"{mv}.model_id"),
        tags,
        aliases,
        "'}'",
    )


# The highest live version per stage, in version order (registry_rows.latest_version_rows).
_LATEST = member_list(
    "latest_versions",
    _version_json("lv", "registered_models.name"),
    "FROM model_versions AS lv WHERE lv.registered_model_id = registered_models.id AND lv.deleted = 0 "
    "AND NOT EXISTS (SELECT 1 FROM model_versions AS newer "
    "WHERE newer.registered_model_id = lv.registered_model_id AND newer.current_stage = lv.current_stage "
    "AND newer.deleted = 0 AND newer.version > lv.version) ORDER BY lv.version",
)

# A RegisteredModel message for the current `registered_models` row, as registry_render does.
MODEL_JSON = sa.literal_column(
    _fields(
        open_object(
            ("name", "registered_models.name"),
            ("creation_timestamp", "registered_models.creation_time"),
            ("last_updated_timestamp", "registered_models.last_updated_time"),
        ),
        member_if_set("description", "registered_models.description"),
        member_if_set("user_id", "registered_models.user_id"),
        _LATEST,
        member_list(
            "tags",
            "json_object('key', t.\"key\", 'value', t.value)",
            'FROM registered_model_tags AS t WHERE t.registered_model_id = registered_models.id ORDER BY t."key"',
        ),
        member_list(
            "aliases",
            "json_object('alias', a.alias, 'version', CAST(a.version AS TEXT))",
            "FROM registered_model_aliases AS a WHERE a.registered_model_id = registered_models.id ORDER BY a.alias",
        ),
        "'}'",
    )
).label("model_json")

# A ModelVersion message for the current `model_versions` row (joined to `registered_models`).
VERSION_JSON = sa.literal_column(_version_json("model_versions", "registered_models.name")).label("version_json")


def messages(rows: Sequence[Sequence[str]]) -> list[Any]:
    """One-column rows of MODEL_JSON or VERSION_JSON as messages orjson embeds as they are."""
    return [orjson.Fragment(text) for (text,) in rows]
