"""The registry's one setting: the model-version source regex, from either environment name."""

from __future__ import annotations

import pytest

from gateway import config as configuration
from tracking_core.settings import CoreSettings


@pytest.mark.parametrize(
    "env_name",
    ["TRACKGATE_MODEL_VERSION_SOURCE_REGEX", "MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX"],
    ids=["trackgate name", "mlflow name"],
)
def test_regex_from_the_environment(env_name: str) -> None:
    config = configuration.load({}, env={env_name: r"^s3://models/"})
    assert config.model_version_source_regex == r"^s3://models/"
    assert CoreSettings.from_json(config.core_settings().to_json()).model_version_source_regex == r"^s3://models/"


def test_unset_or_empty_means_no_check() -> None:
    assert configuration.load({}, env={}).model_version_source_regex is None
    env = {"MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX": ""}
    assert configuration.load({}, env=env).model_version_source_regex is None


def test_a_regex_that_does_not_compile_is_a_config_problem() -> None:
    env = {"MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX": "([unclosed"}
    with pytest.raises(configuration.ConfigError) as caught:
        configuration.load({}, env=env)
    (problem,) = caught.value.problems
    assert problem.startswith("model_version_source_regex is not a valid regular expression")
    assert "MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX" in problem
