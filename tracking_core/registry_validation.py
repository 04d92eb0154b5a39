"""The model registry's input rules (spec §5.1, §5.5), checked before anything is written.

Lengths follow our columns, so an over-long value is a 400 with a message rather than a database
error (which the client would see as a 500 and retry for minutes).
"""

from __future__ import annotations

import posixpath
import re
from typing import Any
from urllib.parse import unquote

from tracking_core import validation
from tracking_core.errors import invalid

MAX_MODEL_NAME_LENGTH = 256
MAX_REGISTRY_TAG_VALUE_LENGTH = 100_000
MAX_ALIAS_LENGTH = 255
MAX_SOURCE_LENGTH = 2048
MAX_RUN_LINK_LENGTH = 2048
MAX_RUN_ID_LENGTH = 32
MAX_MODEL_ID_LENGTH = 36

STAGES = ("None", "Staging", "Production", "Archived")
ACTIVE_STAGES = ("Staging", "Production")
_CANONICAL_STAGES = {s.lower(): s for s in STAGES}

_ALIAS = re.compile(r"^[A-Za-z0-9_\-]+$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")


def model_name(value: Any, what: str = "name") -> str:
    """A registered model name: not blank, no `/` or `:`, and not a path in disguise."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"Missing value for required parameter '{what}'.")
    if "/" in value or ":" in value:
        raise invalid(f"Invalid model name '{value}'. Names cannot contain '/' or ':'.")
    if posixpath.normpath(value) != value or value.startswith(".."):
        raise invalid(f"Invalid value '{value}' for parameter '{what}': names may not be relative paths.")
    validation.length(value, MAX_MODEL_NAME_LENGTH, "Registered model name")
    return value


def version(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise invalid(f"Parameter 'version' must be an integer, got '{value}'.") from None


def stage(value: Any) -> str:
    """The canonical spelling of a stage name, which the API takes in any case."""
    canonical = _CANONICAL_STAGES.get(str(value).lower()) if value is not None else None
    if canonical is None:
        raise invalid(f"Invalid Model Version stage: {value}. Value must be one of {', '.join(STAGES)}.")
    return canonical


def alias(value: Any) -> str:
    """An alias as used in a lookup: only the character and length rules."""
    if not isinstance(value, str) or value == "":
        raise invalid("Registered model alias name cannot be empty.")
    if not _ALIAS.match(value):
        raise invalid(
            f"Invalid alias name: '{value}'. Aliases may only contain alphanumerics, underscores (_) and "
            "dashes (-)."
        )
    validation.length(value, MAX_ALIAS_LENGTH, "Registered model alias name")
    return value


def new_alias(value: Any) -> str:
    """An alias being set: besides the lookup rules, `latest` and `v<number>` mean something already."""
    name = alias(value)
    if name.lower() == "latest":
        raise invalid("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS.match(name):
        raise invalid(f"Version alias name '{name}' is reserved.")
    return name


def tag(key: Any, value: Any, *, value_required: bool) -> tuple[str, str]:
    """A registry tag. Model-version tags must carry a value; registered-model tags default to ""."""
    checked = validation.key(key, "key")
    if value is None:
        if value_required:
            raise invalid(f"Invalid value None for tag '{checked}': model version tag values cannot be null.")
        value = ""
    validation.length(value, MAX_REGISTRY_TAG_VALUE_LENGTH, "Tag value")
    return checked, value


def optional_run_id(value: Any) -> str | None:
    if not value:
        return None
    validation.length(value, MAX_RUN_ID_LENGTH, "run_id")
    return validation.run_id(value)


def optional_model_id(value: Any) -> str | None:
    if not value:
        return None
    validation.length(value, MAX_MODEL_ID_LENGTH, "model_id")
    return str(value)


def _decoded_forms(source: str) -> list[str]:
    """The source as written and each percent-decoding of it, so `%2e%2e` and `%252e%252e` count."""
    forms = [source]
    for _ in range(3):
        decoded = unquote(forms[-1])
        if decoded == forms[-1]:
            break
        forms.append(decoded)
    return forms


def source(value: Any, regex: str | None) -> str:
    """A model-version source: the operator's regex first (as MLflow applies it), then path safety.

    The source becomes a download location the client and the artifact proxy follow, so parent
    segments and NUL bytes, also percent-encoded, are refused whatever the regex says.
    """
    if not isinstance(value, str) or value == "":
        raise invalid("Missing value for required parameter 'source'.")
    if regex is not None and not re.search(regex, value):
        raise invalid(f"Invalid model version source: '{value}'.")
    for form in _decoded_forms(value):
        if "\x00" in form or ".." in re.split(r"[/\\]", form):
            # MLflow's wording (handlers._validate_non_local_source_contains_relative_paths).
            raise invalid(
                f"Invalid model version source: '{value}'. If supplying a source as an http, https, "
                "local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be "
                "provided without relative path references present. Please provide an absolute path."
            )
    validation.length(value, MAX_SOURCE_LENGTH, "Model version source")
    return value
