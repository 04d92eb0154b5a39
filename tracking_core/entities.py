"""Enumerations shared by the API, the store and search (their wire names are MLflow's)."""

from __future__ import annotations

from enum import Enum


class ViewType(str, Enum):
    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"

    @property
    def stages(self) -> tuple[str, ...]:
        """The lifecycle stages this view selects."""
        return {
            ViewType.ACTIVE_ONLY: (LifecycleStage.ACTIVE,),
            ViewType.DELETED_ONLY: (LifecycleStage.DELETED,),
            ViewType.ALL: (LifecycleStage.ACTIVE, LifecycleStage.DELETED),
        }[self]


class LifecycleStage(str, Enum):
    ACTIVE = "active"
    DELETED = "deleted"


class RunStatus(str, Enum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


# Protobuf enum numbers, which the parser accepts as well as names.
VIEW_TYPE_NUMBERS = {1: ViewType.ACTIVE_ONLY, 2: ViewType.DELETED_ONLY, 3: ViewType.ALL}
RUN_STATUS_NUMBERS = {
    1: RunStatus.RUNNING,
    2: RunStatus.SCHEDULED,
    3: RunStatus.FINISHED,
    4: RunStatus.FAILED,
    5: RunStatus.KILLED,
}

# Largest finite double: MLflow stores +-inf as this, which every backend can hold.
MAX_DOUBLE = 1.7976931348623157e308
