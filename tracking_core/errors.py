"""One exception type for every API failure, and MLflow's code → HTTP status table.

Handlers and the store raise `MlflowError(ErrorCode.X, "message")`; the error
middleware (`tracking_core.middleware`) is the one place that turns it into a
response. The table mirrors MLflow's own, because the client branches on
`error_code` and retries on some statuses: a deterministic failure must never
map to a retried status.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    INTERNAL_ERROR = "INTERNAL_ERROR"
    TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
    BAD_REQUEST = "BAD_REQUEST"
    INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
    ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
    INVALID_STATE = "INVALID_STATE"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
    RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    NOT_IMPLEMENTED = "NOT_IMPLEMENTED"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.TEMPORARILY_UNAVAILABLE: 503,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.INVALID_PARAMETER_VALUE: 400,
    ErrorCode.ENDPOINT_NOT_FOUND: 404,
    ErrorCode.INVALID_STATE: 500,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.UNAUTHENTICATED: 401,
    # MLflow answers 400, not 409, and the client's register_model relies on the code only.
    ErrorCode.RESOURCE_ALREADY_EXISTS: 400,
    ErrorCode.RESOURCE_DOES_NOT_EXIST: 404,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.NOT_IMPLEMENTED: 501,
}


class MlflowError(Exception):
    """A failure the API reports to the client as `{"error_code", "message"}`."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def status(self) -> int:
        return HTTP_STATUS[self.code]

    def to_json(self) -> dict[str, str]:
        return {"error_code": self.code.value, "message": self.message}


def invalid(message: str) -> MlflowError:
    return MlflowError(ErrorCode.INVALID_PARAMETER_VALUE, message)


def not_found(message: str) -> MlflowError:
    return MlflowError(ErrorCode.RESOURCE_DOES_NOT_EXIST, message)


def already_exists(message: str) -> MlflowError:
    return MlflowError(ErrorCode.RESOURCE_ALREADY_EXISTS, message)
