"""Side-by-side benchmark of `trackgate server` against `mlflow server` (see bench/README.md)."""
