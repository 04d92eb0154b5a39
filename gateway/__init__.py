"""trackgate: an MLflow-compatible tracking server with its auth gateway built in."""

__version__ = "0.1.0"

# The MLflow release whose REST API trackgate speaks; `/version` answers this, because the
# client gates features on it and users compare it with `mlflow.__version__`.
MLFLOW_API_VERSION = "3.17.2"
