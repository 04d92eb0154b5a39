"""Reading deploy/: the Dockerfile's instructions, every YAML document, the env vars they set."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
CLOUD_RUN = DEPLOY / "cloudrun" / "service.yaml"
COMPOSE = DEPLOY / "compose.yaml"
KUBERNETES = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def dockerfile_cmd() -> list[str]:
    cmds = [args for word, args in dockerfile_instructions() if word == "CMD"]
    return list(json.loads(cmds[-1]))


def dockerfile_env() -> dict[str, str]:
    """ENV of the final stage (KEY=VALUE form)."""
    stages: list[list[tuple[str, str]]] = []
    for word, args in dockerfile_instructions():
        if word == "FROM":
            stages.append([])
        elif stages:
            stages[-1].append((word, args))
    env: dict[str, str] = {}
    for word, args in stages[-1]:
        if word == "ENV":
            for item in args.split():
                key, _, value = item.partition("=")
                env[key] = value
    return env


def containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every container of a Deployment, Job or Cloud Run (Knative) Service."""
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    yield from pod.get("containers", [])
    yield from pod.get("initContainers", [])


def env_entries(container: dict[str, Any]) -> list[dict[str, Any]]:
    return list(container.get("env", []))


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}
