"""deploy/ as an operator applies it: valid manifests, known settings only, the probes and secrets
the platforms need, a slim non-root image whose CMD is `trackgate server`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from gateway.config import SETTINGS
from tests.deploy.manifests import (
    CLOUD_RUN,
    COMPOSE,
    DEPLOY,
    KUBERNETES,
    compose_env,
    containers,
    dockerfile_cmd,
    dockerfile_env,
    dockerfile_instructions,
    documents,
    env_entries,
)

# The Kubernetes release the manifests are checked against (kubernetes-validate ships its schemas).
KUBERNETES_VERSION = "1.34"
REPO = DEPLOY.parent

# Variables the manifests may set that are not trackgate settings, each read by a part trackgate
# uses (the check below greps the source for the MLflow one, so a rename is caught).
LIBRARY_ENV = {
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",  # botocore
    "MLFLOW_S3_ENDPOINT_URL",  # tracking_core/artifacts/s3.py
    "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PATH",  # the interpreter, the image
}
KNOWN_ENV = {name for setting in SETTINGS for name in setting.env_names} | LIBRARY_ENV


def _all_env_names() -> list[tuple[str, str]]:
    names = [(f"Dockerfile ENV {k}", k) for k in dockerfile_env()]
    for path in [CLOUD_RUN, *KUBERNETES]:
        for doc in documents(path):
            for container in containers(doc):
                names += [(f"{path.name} {e['name']}", e["name"]) for e in env_entries(container)]
    for name, service in documents(COMPOSE)[0]["services"].items():
        if "trackgate" in str(service.get("image", "")) or "build" in service:
            names += [(f"compose {name} {k}", k) for k in compose_env(service)]
    return names


@pytest.mark.parametrize("path", KUBERNETES, ids=[p.name for p in KUBERNETES])
def test_kubernetes_manifest_is_valid_strictly(path: Path) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        # Raises ValidationError (unknown fields too, in strict mode) or InvalidSchemaError.
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_env_var_is_a_known_setting() -> None:
    unknown = [where for where, name in _all_env_names() if name not in KNOWN_ENV]
    assert not unknown, f"not trackgate settings: {unknown}"
    source = "\n".join(p.read_text() for p in (REPO / "tracking_core").rglob("*.py"))
    assert "MLFLOW_S3_ENDPOINT_URL" in source


def _by_kind(kind: str) -> dict[str, Any]:
    for path in KUBERNETES:
        for doc in documents(path):
            if doc["kind"] == kind:
                return doc
    raise AssertionError(f"no {kind} in deploy/kubernetes")


def test_deployment_probes_security_and_resources() -> None:
    deployment = _by_kind("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    # Liveness on the gateway's own loop: a database outage must not become restart loops.
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    env = {e["name"]: e for e in container["env"]}
    assert "secretKeyRef" in env["TRACKGATE_BACKEND_STORE_URI"]["valueFrom"]
    assert pod["terminationGracePeriodSeconds"] > float(env["TRACKGATE_DRAIN_TIMEOUT"]["value"])
    # Metrics on their own port, never the public one.
    metrics_port = env["TRACKGATE_METRICS_ADDRESS"]["value"].rsplit(":", 1)[1]
    assert metrics_port != env["PORT"]["value"]
    mounted = {v["name"] for v in pod["volumes"] if "secret" in v}
    assert mounted & {m["name"] for m in container["volumeMounts"]}


def test_migration_job_runs_db_upgrade() -> None:
    job = _by_kind("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:3] == ["trackgate", "db", "upgrade"]
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_service_and_ingress_route_to_the_named_port() -> None:
    service = _by_kind("Service")
    ingress = _by_kind("Ingress")
    ports = {p["name"] for p in _by_kind("Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]


def test_cloud_run_service() -> None:
    (service,) = documents(CLOUD_RUN)
    assert service["apiVersion"] == "serving.knative.dev/v1" and service["kind"] == "Service"
    template = service["spec"]["template"]
    assert "run.googleapis.com/cloudsql-instances" in template["metadata"]["annotations"]
    spec = template["spec"]
    assert spec["timeoutSeconds"] >= 900  # artifact transfers
    assert 1 <= spec["containerConcurrency"] <= 1000
    (container,) = spec["containers"]
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    probe = container["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] <= 240  # Cloud Run's limit
    port = container["ports"][0]["containerPort"]
    assert probe["httpGet"]["port"] == port == int(dockerfile_env()["PORT"])
    secrets = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert secrets == {
        "TRACKGATE_BACKEND_STORE_URI",
        "TRACKGATE_OIDC_CLIENT_SECRET",
        "TRACKGATE_COOKIE_SECRET",
        "TRACKGATE_TOKEN_SIGNING_KEY",
    }
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TRACKGATE_ARTIFACTS_DESTINATION"].startswith("gs://")
    assert "https://accounts.google.com=" in env["TRACKGATE_JWT_ISSUERS"]


def test_dockerfile_is_slim_multi_stage_non_root_with_exec_form_cmd() -> None:
    instructions = dockerfile_instructions()
    froms = [args for word, args in instructions if word == "FROM"]
    assert len(froms) >= 2, "multi-stage"
    assert all("slim" in args or args.startswith("${") for args in froms)
    users = [args for word, args in instructions if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert dockerfile_cmd() == ["trackgate", "server"]  # exec form: JSON array, no shell
    env = dockerfile_env()
    assert env["TRACKGATE_HOST"] == "0.0.0.0" and env["PORT"].isdigit()
    ignore = (REPO / ".dockerignore").read_text().split()
    assert ignore[0:1] == ["*"] or "*" in ignore  # an allow-list context: tests, certs, .git stay out


def test_compose_runs_the_schema_step_before_the_server() -> None:
    services = documents(COMPOSE)[0]["services"]
    assert services["trackgate"]["depends_on"]["db-upgrade"]["condition"] == "service_completed_successfully"
    assert services["db-upgrade"]["command"][:3] == ["trackgate", "db", "upgrade"]
    env = compose_env(services["trackgate"])
    assert env["TRACKGATE_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert "postgres" in services
