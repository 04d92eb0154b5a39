"""trackgate: an MLflow-compatible tracking server with its auth gateway built in."""

from tracking_core.contract import MLFLOW_API_VERSION, PACKAGE_VERSION

__version__ = PACKAGE_VERSION
__all__ = ["MLFLOW_API_VERSION", "__version__"]
