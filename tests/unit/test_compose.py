"""Static checks of the production deployment files.

Nothing here runs Docker or Kubernetes: docker-compose.yml, deploy/Dockerfile,
.dockerignore and deploy/k8s/*.yaml are parsed and their content is checked
against docs/architecture.md §2-§3 (KRaft Kafka, Mongo replica set, Redis, one image for
all services, health-gated start-up, pinned images, secrets not inline).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S_DIR = ROOT / "deploy" / "k8s"

INFRA = ("kafka", "mongo", "redis")
SERVICES = ("appointments", "referrals", "notifications", "followup")
APPS = (*SERVICES, "gateway")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def image_tag(image: str) -> str | None:
    """The tag of an image reference, or None when it has none.

    ``registry:5000/team/name:1.2`` -> ``1.2``; ``name@sha256:...`` -> the
    tag before the digest, if any.
    """
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    return last.rsplit(":", 1)[1]


def assert_pinned(image: str) -> None:
    tag = image_tag(image)
    assert tag, f"image {image!r} has no explicit tag"
    assert tag != "latest", f"image {image!r} uses the 'latest' tag"
    assert "$" not in tag, f"image {image!r} takes its tag from a variable"
    assert re.search(r"\d", tag), f"image {image!r} tag {tag!r} names no version"


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment as a dict (list or mapping form)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {k: v for k, v in pairs}
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def as_argv(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(str(t) for t in test)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped, continuations joined."""
    out: list[tuple[str, str]] = []
    buffer = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, rest = buffer.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buffer = ""
    assert not buffer, "Dockerfile ends inside a line continuation"
    return out


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(K8S_DIR.glob("*.y*ml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
                docs.append((path, doc))
    return docs


def k8s_of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == kind}


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


# ---------------------------------------------------------------------------
# docker-compose.yml
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict), "docker-compose.yml has no services mapping"
    return found


def test_all_services_present(services: dict[str, dict[str, Any]]) -> None:
    missing = set(INFRA + APPS) - set(services)
    assert not missing, f"missing compose services: {sorted(missing)}"


def test_every_image_is_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name in INFRA:
        assert "image" in services[name], f"{name} has no image"
    with_image = {name: svc["image"] for name, svc in services.items() if "image" in svc}
    assert set(INFRA) <= set(with_image)
    for image in with_image.values():
        assert_pinned(image)


def test_infrastructure_images(services: dict[str, dict[str, Any]]) -> None:
    assert services["kafka"]["image"] == "apache/kafka:3.9.1"
    assert services["mongo"]["image"].startswith("mongo:7.")
    assert services["redis"]["image"].startswith("redis:7.")


@pytest.mark.parametrize("name", [*INFRA, *APPS])
def test_every_service_has_a_healthcheck(services: dict[str, dict[str, Any]], name: str) -> None:
    check = services[name].get("healthcheck")
    assert isinstance(check, dict), f"{name} has no healthcheck"
    assert not check.get("disable", False)
    test = check.get("test")
    assert test, f"{name} healthcheck has no test"
    assert test not in ("NONE", ["NONE"])


def test_infrastructure_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    assert "kafka-broker-api-versions.sh" in healthcheck_text(services["kafka"])
    mongo_check = healthcheck_text(services["mongo"])
    assert "mongosh" in mongo_check
    assert "rs.initiate" in mongo_check
    assert "rs0" in mongo_check
    assert "redis-cli ping" in healthcheck_text(services["redis"])


@pytest.mark.parametrize("name", APPS)
def test_app_service_is_built_from_the_shared_image(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    svc = services[name]
    build = svc.get("build")
    assert isinstance(build, dict), f"{name} is not built"
    assert build.get("dockerfile") == "deploy/Dockerfile"
    assert as_argv(svc["command"]) == ["python", "-m", f"services.{name}"]
    assert svc.get("restart") == "unless-stopped"
    assert "/readyz" in healthcheck_text(svc)


def test_app_services_share_one_image(services: dict[str, dict[str, Any]]) -> None:
    images = {services[name].get("image") for name in APPS}
    assert len(images) == 1, f"app services use different images: {images}"


@pytest.mark.parametrize("name", APPS)
def test_app_service_waits_for_healthy_infrastructure(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    depends = services[name].get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on must be the long form"
    for dep in INFRA:
        assert dep in depends, f"{name} does not depend on {dep}"
        assert depends[dep].get("condition") == "service_healthy", f"{name} -> {dep}"


def test_gateway_waits_for_healthy_services(services: dict[str, dict[str, Any]]) -> None:
    depends = services["gateway"]["depends_on"]
    for dep in SERVICES:
        assert dep in depends, f"gateway does not depend on {dep}"
        assert depends[dep].get("condition") == "service_healthy", f"gateway -> {dep}"
    for name in SERVICES:
        assert "gateway" not in services[name].get("depends_on", {})


@pytest.mark.parametrize("name", APPS)
def test_app_service_environment(services: dict[str, dict[str, Any]], name: str) -> None:
    env = env_of(services[name])
    prefix = f"CARELOOP_{name.upper()}_"
    foreign = [key for key in env if not key.startswith(prefix)]
    assert not foreign, f"{name} has variables outside {prefix}: {foreign}"
    for field in ("MONGO_URL", "KAFKA_BOOTSTRAP", "REDIS_URL", "HTTP_PORT", "HTTP_HOST"):
        assert env.get(prefix + field), f"{name} lacks {prefix}{field}"
    mongo_url = env[prefix + "MONGO_URL"]
    assert mongo_url.startswith("mongodb://mongo:27017")
    assert re.search(r"[?&]replicaSet=rs0\b", mongo_url), mongo_url
    assert env[prefix + "KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env[prefix + "REDIS_URL"].startswith("redis://redis:6379/")
    assert env[prefix + "HTTP_HOST"] == "0.0.0.0"
    assert env[prefix + "HTTP_PORT"] == "8000"
    assert env[prefix + "JWT_PUBLIC_KEY_FILE"].startswith("/run/secrets/")


@pytest.mark.parametrize("name", APPS)
def test_pii_keys_are_required_substitutions(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    env = env_of(services[name])
    prefix = f"CARELOOP_{name.upper()}_"
    for field in ("PII_ENCRYPTION_KEYS", "PII_HASH_KEY"):
        value = env.get(prefix + field, "")
        assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", value), (
            f"{name} {field} must be a required ${{VAR:?}} substitution, got {value!r}"
        )


def test_gateway_configuration(services: dict[str, dict[str, Any]]) -> None:
    env = env_of(services["gateway"])
    urls = yaml.safe_load(env["CARELOOP_GATEWAY_SERVICE_URLS"])  # JSON is YAML
    assert urls == {name: f"http://{name}:8000" for name in SERVICES}
    assert env["CARELOOP_GATEWAY_JWT_PRIVATE_KEY_FILE"] == "/run/secrets/jwt_private_key"
    assert "jwt_private_key" in services["gateway"]["secrets"]


def test_only_the_gateway_holds_the_private_key(services: dict[str, dict[str, Any]]) -> None:
    for name in SERVICES:
        assert "jwt_public_key" in services[name].get("secrets", [])
        assert "jwt_private_key" not in services[name].get("secrets", [])


def test_secrets_come_from_files_under_deploy_secrets(compose: dict[str, Any]) -> None:
    secrets = compose.get("secrets")
    assert isinstance(secrets, dict)
    assert {"jwt_public_key", "jwt_private_key"} <= set(secrets)
    for name, spec in secrets.items():
        assert spec["file"].startswith("./deploy/secrets/"), name


def test_kafka_runs_kraft_without_auto_create(services: dict[str, dict[str, Any]]) -> None:
    env = env_of(services["kafka"])
    roles = {role.strip() for role in env["KAFKA_PROCESS_ROLES"].split(",")}
    assert roles == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_NODE_ID"] == "1"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert "CONTROLLER://" in env["KAFKA_LISTENERS"]
    assert "PLAINTEXT://" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env


def test_mongo_is_a_replica_set(services: dict[str, dict[str, Any]]) -> None:
    argv = as_argv(services["mongo"]["command"])
    assert "--replSet" in argv
    assert argv[argv.index("--replSet") + 1] == "rs0"
    assert "--bind_ip_all" in argv
    assert any(v.endswith(":/data/db") for v in services["mongo"].get("volumes", []))


def test_redis_persists(services: dict[str, dict[str, Any]]) -> None:
    argv = as_argv(services["redis"]["command"])
    assert "--appendonly" in argv
    assert argv[argv.index("--appendonly") + 1] == "yes"


def test_only_the_gateway_publishes_ports(services: dict[str, dict[str, Any]]) -> None:
    publishing = sorted(name for name, svc in services.items() if svc.get("ports"))
    assert publishing == ["gateway"]
    assert [str(p) for p in services["gateway"]["ports"]] == ["8080:8000"]


# ---------------------------------------------------------------------------
# deploy/Dockerfile and .dockerignore
# ---------------------------------------------------------------------------


def test_dockerfile_base_image_is_pinned() -> None:
    stages: set[str] = set()
    bases: list[str] = []
    for keyword, args in dockerfile_instructions():
        if keyword != "FROM":
            continue
        words = [w for w in args.split() if not w.startswith("--")]
        image = words[0]
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2].lower())
        if image.lower() not in stages:
            bases.append(image)
    assert len(bases) >= 2, "expected a multi-stage build"
    for image in bases:
        assert_pinned(image)
        assert image.startswith("python:3.11-slim-bookworm"), image


def test_dockerfile_installs_with_require_hashes() -> None:
    runs = [args for keyword, args in dockerfile_instructions() if keyword == "RUN"]
    installs = [run for run in runs if "pip install" in run and "requirements.lock" in run]
    assert installs, "no pip install of requirements.lock"
    for run in installs:
        assert "--require-hashes" in run
        assert "--no-cache-dir" in run
    copies = " ".join(args for keyword, args in dockerfile_instructions() if keyword == "COPY")
    for path in ("requirements.lock", "shared/", "services/"):
        assert path in copies, f"Dockerfile does not copy {path}"


def test_dockerfile_runtime_settings() -> None:
    instructions = dockerfile_instructions()
    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "Dockerfile never leaves root"
    assert users[-1].split(":")[0] not in ("root", "0")
    env = " ".join(args for keyword, args in instructions if keyword == "ENV")
    assert re.search(r"\bPYTHONUNBUFFERED=1\b", env)
    health = [args for keyword, args in instructions if keyword == "HEALTHCHECK"]
    assert len(health) == 1
    assert "urllib" in health[0]
    assert "/healthz" in health[0]
    cmds = [args for keyword, args in instructions if keyword == "CMD"]
    assert yaml.safe_load(cmds[-1]) == ["python", "-m", "services.gateway"]


def test_dockerignore_excludes_local_state() -> None:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    patterns = {line.strip().rstrip("/") for line in lines if line.strip()}
    for entry in (".venv", ".data", ".git", "tests"):
        assert entry in patterns, f".dockerignore does not exclude {entry}"
    assert any("__pycache__" in p for p in patterns)


# ---------------------------------------------------------------------------
# deploy/k8s
# ---------------------------------------------------------------------------


def test_k8s_manifests_parse_and_are_listed_in_kustomization() -> None:
    docs = k8s_documents()
    assert docs
    for path, doc in docs:
        assert doc.get("kind"), f"{path.name}: document without kind"
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_kafka_statefulset_is_a_three_node_kraft_cluster() -> None:
    kafka = k8s_of_kind("StatefulSet")["kafka"]
    spec = kafka["spec"]
    assert spec["replicas"] == 3
    headless = k8s_of_kind("Service")[spec["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    (container,) = spec["template"]["spec"]["containers"]
    assert_pinned(container["image"])
    env = container_env(container)
    roles = {role.strip() for role in env["KAFKA_PROCESS_ROLES"].split(",")}
    assert roles == {"broker", "controller"}
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == 3
    assert sorted(v.split("@")[0] for v in voters) == ["0", "1", "2"]
    assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
    assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_every_app_has_a_deployment_and_a_service() -> None:
    deployments = k8s_of_kind("Deployment")
    services = k8s_of_kind("Service")
    assert set(APPS) <= set(deployments)
    assert set(APPS) <= set(services)


@pytest.mark.parametrize("name", APPS)
def test_deployment(name: str) -> None:
    deployment = k8s_of_kind("Deployment")[name]
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    (container,) = spec["template"]["spec"]["containers"]
    assert_pinned(container["image"])
    assert container["command"] == ["python", "-m", f"services.{name}"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert {"cpu", "memory"} <= set(resources["limits"])
    sources = container["envFrom"]
    prefix = f"CARELOOP_{name.upper()}_"
    assert all(source.get("prefix") == prefix for source in sources)
    assert {"name": "careloop-config"} in [s.get("configMapRef") for s in sources]
    assert {"name": "careloop-secrets"} in [s.get("secretRef") for s in sources]
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_every_k8s_deployment_has_probes() -> None:
    deployments = k8s_of_kind("Deployment")
    assert deployments
    for name, deployment in deployments.items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "readinessProbe" in container, f"{name}: no readiness probe"
            assert "livenessProbe" in container, f"{name}: no liveness probe"


def test_shared_config_feeds_the_prefixed_settings() -> None:
    data = k8s_of_kind("ConfigMap")["careloop-config"]["data"]
    assert data["HTTP_HOST"] == "0.0.0.0"
    assert data["HTTP_PORT"] == "8000"
    assert data["KAFKA_REPLICATION_FACTOR"] == "3"
    brokers = data["KAFKA_BOOTSTRAP"].split(",")
    assert len(brokers) == 3
    assert not any(key.startswith("CARELOOP_") for key in data)


def test_compose_passes_the_production_guards(services: dict[str, dict[str, Any]]) -> None:
    """Compose runs with environment=production: no sandbox provider (its records hold
    login codes) and a gateway that knows who its clients are (shared/settings.py)."""
    notifications = env_of(services["notifications"])
    assert notifications["CARELOOP_NOTIFICATIONS_ENVIRONMENT"] == "production"
    assert notifications["CARELOOP_NOTIFICATIONS_SMS_PROVIDER"] == "aliyun"
    assert notifications["CARELOOP_NOTIFICATIONS_WECHAT_PROVIDER"] == "wechat"
    gateway = env_of(services["gateway"])
    assert gateway.get("CARELOOP_GATEWAY_TRUSTED_PROXIES") or (
        gateway.get("CARELOOP_GATEWAY_DIRECT_CLIENTS") == "true"
    )
