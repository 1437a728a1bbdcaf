"""deploy/, read as kustomize and Kubernetes would (no cluster here): the core kinds against
the Kubernetes schemas (kubernetes-validate, strict), and what the schemas cannot know: the
probes' paths answer in the API, the KEDA rules query metrics that /metrics serves, for the
queues the workers consume, and the grace periods outlast a request's deadline."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import fakeredis
import kubernetes_validate
import pytest
import yaml

import celeryconfig
from api import create_app
from orchestrator.config import load_settings
from orchestrator.core.catalog import Catalog
from orchestrator.runtime.services import Services

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES_VERSION = "1.32.0"  # the oldest release the manifests are written for (preStop's sleep)
KEDA = "keda.sh/v1alpha1"


def documents(directory: Path = DEPLOY) -> list[tuple[Path, dict]]:
    """Every object the kustomization in `directory` names, and those of its subdirectories'
    (the optional components: the sandbox)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    found = []
    for name in kustomization.get("resources", []):
        found += [(directory / name, doc) for doc in yaml.safe_load_all((directory / name).read_text()) if doc]
    for component in sorted(directory.glob("*/kustomization.yaml")):
        found += documents(component.parent)
    return found


def of_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == kind}


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


@pytest.fixture(scope="module")
def app():
    settings = load_settings(read_dotenv=False)
    return create_app(Services(settings=settings, redis=fakeredis.FakeRedis(decode_responses=True),
                               catalog=Catalog.load(None)))


def test_every_file_in_deploy_is_part_of_the_kustomization():
    listed = {path for path, _ in documents()}
    on_disk = {path for path in DEPLOY.rglob("*.yaml") if path.name != "kustomization.yaml"}
    assert on_disk == listed


@pytest.mark.parametrize("path, doc", [(p.relative_to(DEPLOY), d) for p, d in documents()
                                       if d["apiVersion"] != KEDA],
                         ids=lambda value: str(value) if isinstance(value, Path) else value["kind"])
def test_core_kinds_are_valid(path, doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)  # raises ValidationError


def test_the_api_and_every_worker_lane_have_a_disruption_budget_and_the_api_an_autoscaler():
    budgets = {doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for doc in of_kind(
        "PodDisruptionBudget").values()}
    assert budgets == {"api", "worker-chat", "worker-batch"}
    (hpa,) = of_kind("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "api" and hpa["spec"]["minReplicas"] >= 2


def test_every_container_requests_cpu_and_memory():
    for name, deployment in of_kind("Deployment").items():
        assert set(container(deployment)["resources"]["requests"]) == {"cpu", "memory"}, name


def test_the_probes_ask_the_apis_health_endpoints(app):
    api = container(of_kind("Deployment")["api"])
    paths = {probe: api[probe]["httpGet"]["path"] for probe in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert paths["livenessProbe"].endswith("/health/live") and paths["readinessProbe"].endswith("/health/ready")
    client = app.test_client()
    assert client.get(paths["livenessProbe"]).status_code == 200
    assert client.get(paths["startupProbe"]).status_code == 200
    assert client.get(paths["readinessProbe"]).status_code == 503  # no worker's heartbeat in this Redis


def test_grace_periods_outlast_a_requests_deadline():
    deadline = float(of_kind("ConfigMap")["orchestrator-config"]["data"]["REQUEST_TIMEOUT"])
    deployments = of_kind("Deployment")
    for lane in ("worker-chat", "worker-batch"):
        assert deployments[lane]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > deadline + 60
    api = deployments["api"]["spec"]["template"]["spec"]
    env = {item["name"]: item["value"] for item in api["containers"][0]["env"]}
    graceful = float(shlex.split(env["GUNICORN_CMD_ARGS"])[1])
    assert deadline < graceful < api["terminationGracePeriodSeconds"] - api["containers"][0]["lifecycle"][
        "preStop"]["sleep"]["seconds"]


def test_the_config_map_sets_only_settings_the_orchestrator_reads():
    source = (DEPLOY.parent / "orchestrator" / "config.py").read_text()
    for data in (doc["data"] for _, doc in documents() if doc["kind"] == "ConfigMap"):
        for name in data:
            assert f'"{name}"' in source, name


def test_keda_scales_each_lane_on_metrics_the_api_serves_for_the_queue_it_consumes(app):
    served = {family for family in re.findall(r"^# TYPE (\w+) ", app.test_client().get("/metrics").get_data(
        as_text=True), re.MULTILINE)}
    deployments = of_kind("Deployment")
    queues = {queue.name for queue in celeryconfig.task_queues}
    scaled = of_kind("ScaledObject")
    assert {doc["spec"]["scaleTargetRef"]["name"] for doc in scaled.values()} == {f"worker-{q}" for q in queues}
    for doc in scaled.values():
        target = doc["spec"]["scaleTargetRef"]["name"]
        command = container(deployments[target])["command"]
        lane = command[command.index("--queues") + 1]
        assert lane in queues
        queried = set()
        for trigger in doc["spec"]["triggers"]:
            assert trigger["type"] == "prometheus" and float(trigger["metadata"]["threshold"]) > 0
            query = trigger["metadata"]["query"]
            assert re.findall(r'queue="(\w+)"', query) == [lane], query
            queried |= set(re.findall(r"(orchestrator_\w+)\{", query))
        assert queried == {"orchestrator_queue_depth", "orchestrator_queue_oldest_age_seconds"}
        assert queried <= served
    assert scaled["worker-chat"]["spec"]["minReplicaCount"] >= 1  # /health/ready needs a live worker
