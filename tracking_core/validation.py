"""MLflow's input rules (names, lengths, batch limits), checked before anything is written."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from tracking_core.errors import invalid

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_RUN_TAG_VALUE_LENGTH = 8000
MAX_EXPERIMENT_TAG_VALUE_LENGTH = 20000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_ARTIFACT_LOCATION_LENGTH = 2048
MAX_RUN_NAME_LENGTH = 250
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_BATCH_TOTAL = 1000
MAX_RESULTS_SEARCH_RUNS = 50000
MAX_RESULTS_SEARCH_EXPERIMENTS = 50000
MAX_RUN_IDS_BULK = 100
MAX_RESULTS_BULK_INTERVAL = 2500
MAX_DATASET_NAME = 500
MAX_DATASET_DIGEST = 36
MAX_DATASET_SOURCE = 65535
MAX_DATASET_SCHEMA = 1048575
MAX_DATASET_PROFILE = 16777215
MAX_INPUT_TAG_KEY = 255
MAX_INPUT_TAG_VALUE = 500

_KEY_CHARS = re.compile(r"^[/\w.\- :]*$")
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")


def key(value: Any, what: str = "key") -> str:
    """A metric, param or tag key: MLflow's characters, no path tricks, at most 250 characters."""
    if value is None or value == "":
        raise invalid(f"Missing value for required parameter '{what}'.")
    if not isinstance(value, str) or not _KEY_CHARS.match(value) or not _is_plain_path(value):
        raise invalid(
            f"Invalid value \"{value}\" for parameter '{what}' supplied: Names may only contain "
            "alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."
        )
    if len(value) > MAX_KEY_LENGTH:
        raise invalid(f"'{what}' exceeds the maximum length of {MAX_KEY_LENGTH} characters.")
    return value


def _is_plain_path(value: str) -> bool:
    return posixpath.normpath(value) == value and value != "." and not value.startswith(("..", "/"))


def length(value: str | None, limit: int, what: str) -> None:
    if value is not None and len(value) > limit:
        raise invalid(f"{what} exceeds the maximum length of {limit} characters (got {len(value)}).")


def truncate(value: str, limit: int) -> str:
    """MLflow truncates over-long param and run-tag values rather than refusing them."""
    return value[:limit]


def experiment_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise invalid("Invalid experiment name: must be a non-empty string.")
    length(name, MAX_EXPERIMENT_NAME_LENGTH, "Experiment name")
    return name


INT64_MAX = 2**63 - 1
_DIGITS = re.compile(r"\d{1,19}")


def experiment_id(value: Any) -> int:
    """An experiment id as the database holds it: digits that fit a 64-bit column (a 400-digit
    id is a client error, not an overflow inside the driver)."""
    text = value if isinstance(value, str) else str(value)
    if _DIGITS.fullmatch(text) and int(text) <= INT64_MAX:
        return int(text)
    shown = text if len(text) <= 40 else text[:40] + "..."
    raise invalid(f"Invalid experiment ID '{shown}'. Experiment ID must be a valid integer.")


def run_id(value: Any) -> str:
    if not isinstance(value, str) or not _RUN_ID.match(value):
        raise invalid(f"Invalid value \"{value}\" for parameter 'run_id' supplied.")
    return value


def metric_value(key_: str, value: Any) -> float:
    if value is None:
        raise invalid(f"Got invalid value None for metric '{key_}' (timestamp=..., value=None).")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"Got invalid value {value!r} for metric '{key_}'. Please specify value as a valid double.")
    return float(value)


def timestamp(value: Any, key_: str) -> int:
    if value is None:
        raise invalid(f"Missing value for required parameter 'timestamp' of metric '{key_}'.")
    if value < 0:
        raise invalid(f"Got invalid timestamp {value} for metric '{key_}': must be non-negative.")
    return int(value)


def max_results(value: int | None, default: int, limit: int, *, required: bool = False) -> int:
    if value is None:
        if required:
            raise invalid("Invalid value for max_results: it must be a positive integer.")
        return default
    if value <= 0 or value > limit:
        raise invalid(f"Invalid value {value} for parameter 'max_results' supplied. It must be at most {limit}"
                      " and at least 1.")
    return value


def batch_sizes(n_metrics: int, n_params: int, n_tags: int) -> None:
    for n, limit, what in (
        (n_metrics, MAX_BATCH_METRICS, "metrics"),
        (n_params, MAX_BATCH_PARAMS, "params"),
        (n_tags, MAX_BATCH_TAGS, "tags"),
    ):
        if n > limit:
            raise invalid(
                f"A batch logging request can contain at most {limit} {what}. Got {n} {what}. "
                "Please split up the request into multiple requests."
            )
    total = n_metrics + n_params + n_tags
    if total > MAX_BATCH_TOTAL:
        raise invalid(
            f"A batch logging request can contain at most {MAX_BATCH_TOTAL} metrics, params and tags in total. "
            f"Got {total}."
        )
