"""The model registry's endpoints: registered models and their versions, mounted together."""

from __future__ import annotations

from tracking_core.api import model_versions, registered_models

ENDPOINTS = (*registered_models.ENDPOINTS, *model_versions.ENDPOINTS)
