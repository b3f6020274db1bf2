"""The deployment artefacts: Kubernetes manifests (deploy/k8s), the compose file and the
Dockerfile.

Every manifest is validated offline against the schemas of one Kubernetes release that the
kubernetes-validate package ships (strict: an unknown field fails), KEDA's objects against the
schemas in tests/deploy/schemas; the structural checks in tests/deploy/checks.py then catch
what a schema cannot. Each check is also run on a copy with a planted mistake, to show that it
finds it.
"""

from __future__ import annotations

import copy
import shutil
import socket
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from django.conf import settings

from tests.deploy import checks
from tests.deploy.checks import (
    DOCKERFILE,
    K8S,
    KUBERNETES_VERSION,
    EntryPoints,
    Manifest,
    containers,
    named,
    option,
)
from tests.fixtures import ROOT


@pytest.fixture(scope="module")
def committed() -> list[Manifest]:
    return checks.load_manifests()


@pytest.fixture
def manifests(committed) -> list[Manifest]:
    """A copy each test may change."""
    return copy.deepcopy(committed)


@pytest.fixture
def compose() -> dict:
    return checks.load_compose()


@pytest.fixture(scope="module")
def entry() -> EntryPoints:
    from celery import Celery
    from celery.app.utils import find_app
    from django.core.management import get_commands

    # What `celery -A config` loads, found the way Celery's command line finds it.
    app = find_app("config")
    assert isinstance(app, Celery)
    return EntryPoints(
        management_commands=set(get_commands()),
        queues={queue.name for queue in app.conf.task_queues},
        celery_app="config",
    )


@pytest.fixture(scope="module")
def known() -> set[str]:
    return checks.settings_env_names()


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access during validation: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def deployment(manifests, name) -> dict:
    return named(manifests, "Deployment", name).doc


def container(manifests, name, index=0) -> dict:
    return checks.pod_template(deployment(manifests, name))["spec"]["containers"][index]


def env_entry(spec: dict, name: str) -> dict:
    return next(entry for entry in spec["env"] if entry["name"] == name)


# --- Schemas ------------------------------------------------------------------------------


def test_the_pinned_kubernetes_release_is_one_the_validator_ships():
    assert KUBERNETES_VERSION in kubernetes_validate.utils.all_versions()
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    assert (schemas / f"v{KUBERNETES_VERSION}-local-strict" / "deployment-apps-v1.json").is_file()


def test_every_manifest_validates_against_its_schema_offline(committed, offline):
    kinds = sorted({m.doc["kind"] for m in committed})
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "Namespace",
        "PodDisruptionBudget",
        "ScaledObject",
        "Service",
        "ServiceAccount",
        "TriggerAuthentication",
    ]
    problems = [p for manifest in committed for p in checks.schema_problems(manifest)]
    assert problems == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["spec"].__setitem__("replicas", "2"),
            "spec.replicas: '2' is not of type 'integer'",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].__setitem__(
                "containerPort", "8001"
            ),
            "'8001' is not of type 'integer'",
        ),
        (
            lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__(
                "livenessprobe", {}
            ),
            "'livenessprobe' was unexpected",
        ),
        (lambda d: d.__setitem__("apiVersion", "extensions/v1beta1"), "Couldn't find schema"),
    ],
    ids=["replicas-as-string", "port-as-string", "misspelt-field", "removed-api-version"],
)
def test_the_schema_check_rejects_a_broken_deployment(manifests, offline, change, expected):
    ws = named(manifests, "Deployment", "montage-ws")
    change(ws.doc)
    problems = checks.schema_problems(ws)
    assert len(problems) == 1
    assert expected in problems[0]


def test_the_keda_schemas_are_valid_json_schemas():
    for file_name in checks.KEDA_SCHEMAS.values():
        jsonschema.Draft202012Validator.check_schema(checks.keda_schema(file_name))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s["triggers"][0]["metadata"].__setitem__("listLength", 1),
            "1 is not of type 'string'",
        ),
        (
            lambda s: s["triggers"][0]["metadata"].__setitem__("listname", "gpu"),
            "'listname' was unexpected",
        ),
        (lambda s: s.__setitem__("minReplicas", 0), "'minReplicas' was unexpected"),
        (lambda s: s.pop("triggers"), "'triggers' is a required property"),
        (
            lambda s: s["triggers"][0]["authenticationRef"].__setitem__("kind", "Secret"),
            "'Secret' is not one of",
        ),
        (
            lambda s: s["advanced"]["scalingModifiers"].pop("target"),
            "'target' is a required property",
        ),
    ],
    ids=[
        "metadata-value-not-a-string",
        "misspelt-redis-parameter",
        "unknown-spec-field",
        "no-triggers",
        "wrong-authentication-kind",
        "modifier-without-target",
    ],
)
def test_the_keda_schema_rejects_a_broken_scaled_object(manifests, change, expected):
    scaled = named(manifests, "ScaledObject", "montage-gpu-worker")
    change(scaled.doc["spec"])
    problems = checks.schema_problems(scaled)
    assert problems, "the broken ScaledObject passed"
    assert any(expected in p for p in problems), problems


def test_the_keda_schema_rejects_a_broken_trigger_authentication(manifests):
    auth = named(manifests, "TriggerAuthentication", "montage-redis")
    auth.doc["spec"]["secretTargetRef"][0].pop("key")
    assert any("'key' is a required property" in p for p in checks.schema_problems(auth))


# --- Kustomize and namespaces -------------------------------------------------------------


def test_the_kustomization_lists_every_manifest_file():
    assert checks.kustomization_problems() == []


def test_the_kustomization_check_finds_a_forgotten_file(tmp_path):
    for path in K8S.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "extra.yaml").write_text("kind: ConfigMap\n")
    (tmp_path / "web.yaml").unlink()
    assert checks.kustomization_problems(tmp_path) == [
        "web.yaml is listed but missing",
        "extra.yaml is not listed",
    ]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_every_object_in_the_namespace(committed):
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in objects) == sorted(
        (m.doc["kind"], m.doc["metadata"]["name"]) for m in committed
    )
    assert {d["metadata"].get("namespace") for d in objects if d["kind"] != "Namespace"} == {
        "montage"
    }


def test_every_object_is_in_the_montage_namespace(committed, manifests):
    assert checks.namespace_problems(committed) == []
    named(manifests, "Service", "montage-ws").doc["metadata"]["namespace"] = "default"
    assert checks.namespace_problems(manifests) == [
        "ws.yaml: Service/montage-ws: namespace default is not {'montage'}"
    ]


# --- Selectors, Services, Ingresses -------------------------------------------------------


def test_selectors_services_and_budgets_match_pods(committed):
    assert checks.selector_problems(committed) == []


def test_a_budget_that_selects_nothing_is_found(manifests):
    pdb = named(manifests, "PodDisruptionBudget", "montage-gpu-worker")
    pdb.doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "gpu"
    assert checks.selector_problems(manifests) == [
        "gpu-worker.yaml: PodDisruptionBudget/montage-gpu-worker: selects 0 Deployments, not 1"
    ]


def test_a_service_port_the_pods_do_not_serve_is_found(manifests):
    named(manifests, "Service", "montage-web").doc["spec"]["ports"][0]["targetPort"] = "web"
    assert checks.selector_problems(manifests) == [
        "web.yaml: Service/montage-web: targetPort web is not a port of "
        "web.yaml: Deployment/montage-web"
    ]


def test_a_service_that_selects_no_pods_is_found(manifests):
    named(manifests, "Service", "montage-ws").doc["spec"]["selector"]["app.kubernetes.io/name"] = (
        "montage-ws"
    )
    assert "ws.yaml: Service/montage-ws: selects no pods" in checks.selector_problems(manifests)


def test_ingress_routes_ws_to_asgi_and_the_rest_to_wsgi(committed):
    assert checks.ingress_problems(committed) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda i: i["montage-ws"]["spec"]["rules"][0]["http"]["paths"][0]["backend"][
                "service"
            ].__setitem__("name", "montage-web"),
            "/ws/ must reach the ws process, not rest",
        ),
        (
            lambda i: i["montage-web"]["spec"]["rules"][0]["http"]["paths"][0]["backend"][
                "service"
            ].__setitem__("name", "montage-api"),
            "ingress.yaml: Ingress/montage-web: / -> no Service montage-api",
        ),
        (
            lambda i: i["montage-web"]["spec"]["rules"][0]["http"]["paths"][0]["backend"][
                "service"
            ].__setitem__("port", {"number": 80}),
            "ingress.yaml: Ingress/montage-web: / -> web.yaml: Service/montage-web has no port 80",
        ),
        (
            lambda i: i["montage-ws"]["spec"]["rules"][0].__setitem__("host", "ws.example.com"),
            "ingress.yaml: Ingress/montage-ws: host 'ws.example.com' is not in ALLOWED_HOSTS",
        ),
    ],
    ids=["ws-to-wsgi", "unknown-service", "unknown-port", "host-not-allowed"],
)
def test_ingress_mistakes_are_found(manifests, change, expected):
    change({m.doc["metadata"]["name"]: m.doc for m in checks.of_kind(manifests, "Ingress")})
    assert expected in checks.ingress_problems(manifests)


def test_metrics_left_open_on_the_public_host_is_found(manifests):
    manifests[:] = [m for m in manifests if m.doc["metadata"]["name"] != "montage-metrics"]
    assert checks.ingress_problems(manifests) == [
        "/ routes /metrics to the public; restrict it with its own Ingress"
    ]


# --- Probes -------------------------------------------------------------------------------


def test_servers_and_workers_have_their_probes(committed):
    assert checks.probe_problems(committed) == []


def test_a_liveness_probe_on_readyz_is_found(manifests):
    container(manifests, "montage-web")["livenessProbe"]["httpGet"]["path"] = "/readyz"
    assert checks.probe_problems(manifests) == [
        "web.yaml: Deployment/montage-web container web: livenessProbe asks /readyz, not /healthz"
    ]


def test_a_probe_that_django_would_refuse_for_its_host_is_found(manifests):
    ws = container(manifests, "montage-ws")
    env_entry(ws, "ALLOWED_HOSTS")["value"] = "$(ALLOWED_HOSTS)"
    problems = checks.probe_problems(manifests)
    assert len(problems) == 2
    assert all("pod IP as Host" in p for p in problems)


def test_a_worker_probe_that_pings_another_worker_is_found(manifests):
    probe = container(manifests, "montage-gpu-worker")["livenessProbe"]["exec"]["command"]
    probe[2] = probe[2].replace("--destination=gpu@", "--destination=cpu@")
    assert checks.probe_problems(manifests) == [
        "gpu-worker.yaml: Deployment/montage-gpu-worker container worker: the probe pings "
        "cpu@SUBSTITUTED, not this worker (gpu@%h)"
    ]


def test_a_worker_without_a_probe_is_found(manifests):
    del container(manifests, "montage-cpu-worker")["livenessProbe"]
    assert checks.probe_problems(manifests) == [
        "cpu-worker.yaml: Deployment/montage-cpu-worker container worker: a worker needs an "
        "exec liveness probe that runs celery inspect ping"
    ]


def test_the_metrics_directory_exists_before_any_process_starts(committed, manifests):
    assert checks.metrics_dir_problems(committed) == []
    web = container(manifests, "montage-web")
    web["volumeMounts"] = [m for m in web["volumeMounts"] if m["mountPath"] != "/tmp/prometheus"]
    assert checks.metrics_dir_problems(manifests) == [
        "web.yaml: Deployment/montage-web container web: PROMETHEUS_MULTIPROC_DIR "
        "/tmp/prometheus is no volume mount"
    ]


# --- GPU worker, beat, grace periods, autoscaling -----------------------------------------


def test_the_gpu_worker_gets_one_gpu_on_a_gpu_node(committed):
    assert checks.gpu_problems(committed) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda pod: pod.pop("nodeSelector"), "needs a nodeSelector for GPU nodes"),
        (lambda pod: pod.pop("tolerations"), "needs a toleration for the nvidia.com/gpu taint"),
        (
            lambda pod: pod["containers"][0]["resources"]["limits"].pop("nvidia.com/gpu"),
            "must request and limit nvidia.com/gpu: 1",
        ),
        (
            lambda pod: pod["containers"][0]["args"].__setitem__(4, "--concurrency=2"),
            "a GPU worker runs one task at a time",
        ),
        (
            lambda pod: pod["containers"][0].__setitem__("image", "montage:0.1.0"),
            "needs the CUDA image, not montage:0.1.0",
        ),
    ],
    ids=["no-node-selector", "no-toleration", "no-gpu", "concurrency", "cpu-image"],
)
def test_gpu_worker_mistakes_are_found(manifests, change, expected):
    change(checks.pod_template(deployment(manifests, "montage-gpu-worker"))["spec"])
    problems = checks.gpu_problems(manifests)
    assert len(problems) == 1
    assert problems[0].endswith(expected)


def test_beat_runs_once(committed, manifests):
    assert checks.beat_problems(committed) == []
    beat = deployment(manifests, "montage-beat")
    beat["spec"]["replicas"] = 2
    beat["spec"]["strategy"] = {"type": "RollingUpdate"}
    assert checks.beat_problems(manifests) == [
        "beat.yaml: Deployment/montage-beat container beat: replicas must be 1, not 2",
        "beat.yaml: Deployment/montage-beat container beat: a rollout must stop the old "
        "scheduler first",
    ]


def test_workers_outlive_their_longest_task(committed, manifests):
    limit = settings.CELERY_TASK_TIME_LIMIT
    assert checks.grace_problems(committed, limit) == []
    checks.pod_template(deployment(manifests, "montage-cpu-worker"))["spec"][
        "terminationGracePeriodSeconds"
    ] = 600
    assert checks.grace_problems(manifests, limit) == [
        "cpu-worker.yaml: Deployment/montage-cpu-worker container worker: "
        "terminationGracePeriodSeconds 600 must exceed the task time limit 1800"
    ]


def test_autoscalers_own_their_replicas_and_keda_counts_every_gpu_list(committed):
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert checks.kombu_queue_lists("gpu", options) == {"gpu"} | {f"gpu:{n}" for n in range(1, 10)}
    assert checks.autoscaling_problems(committed, options) == []


def test_a_replica_count_on_an_autoscaled_deployment_is_found(manifests):
    deployment(manifests, "montage-web")["spec"]["replicas"] = 3
    assert checks.autoscaling_problems(manifests, settings.CELERY_BROKER_TRANSPORT_OPTIONS) == [
        "web.yaml: Deployment/montage-web: sets replicas although "
        "web.yaml: HorizontalPodAutoscaler/montage-web scales it; every apply would reset the count"
    ]


def test_a_priority_list_keda_does_not_watch_is_found(manifests):
    scaled = named(manifests, "ScaledObject", "montage-gpu-worker").doc["spec"]
    scaled["triggers"] = [t for t in scaled["triggers"] if t["name"] != "p4"]
    scaled["advanced"]["scalingModifiers"]["formula"] = " + ".join(
        t["name"] for t in scaled["triggers"]
    )
    problems = checks.autoscaling_problems(manifests, settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    assert len(problems) == 1
    assert "the gpu queue's tasks wait in" in problems[0]
    assert "'gpu:4'" in problems[0].split("wait in")[1]


def test_a_formula_that_drops_a_trigger_is_found(manifests):
    scaled = named(manifests, "ScaledObject", "montage-gpu-worker").doc["spec"]
    scaled["advanced"]["scalingModifiers"]["formula"] = "p0 + p1"
    problems = checks.autoscaling_problems(manifests, settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    assert len(problems) == 1
    assert "the formula must add every trigger once" in problems[0]


# --- Environment and secrets --------------------------------------------------------------


def test_the_settings_parser_finds_every_kind_of_read(tmp_path):
    module = tmp_path / "settings.py"
    module.write_text(
        "import os\n"
        "A = env_str('ALPHA', 'x')\n"
        "B = env_int('BRAVO', 1)\n"
        "C = os.environ.get('CHARLIE')\n"
        "D = os.environ['DELTA']\n"
        "E = os.getenv('ECHO')\n"
        "os.environ.setdefault('FOXTROT', 'written, not read')\n"
        "G = some_function('GOLF')\n"
    )
    assert checks.settings_env_names([module]) == {"ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"}


def test_the_settings_parser_reads_config_settings(known):
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "LOG_FORMAT", "MONTAGE_DATA_DIR"} <= known
    assert {"PROVENANCE_VERIFY_PREWARM", "GENERATION_SIGNING_KEY", "STORAGE_BACKEND"} <= known


def test_every_variable_the_manifests_set_is_read_by_a_setting(committed, known):
    assert checks.env_problems(committed, known) == []


def test_a_variable_no_setting_reads_is_found(committed, manifests, known):
    beat = container(manifests, "montage-beat")
    beat["env"].append({"name": "CELERY_BEAT_SCHEDULE", "value": "x"})
    beat["envFrom"].append({"secretRef": {"name": "montage-secrets"}})
    found = set(checks.env_problems(manifests, known)) - set(checks.env_problems(committed, known))
    assert found == {
        "beat.yaml: Deployment/montage-beat container beat: CELERY_BEAT_SCHEDULE is read by no "
        "setting",
        "beat.yaml: Deployment/montage-beat container beat: envFrom secretRef montage-secrets "
        "hides which variables it sets; name each with secretKeyRef",
    }


def test_every_container_gets_what_production_requires(committed, manifests):
    assert checks.required_env_problems(committed) == []
    worker = container(manifests, "montage-cpu-worker")
    worker["env"] = [e for e in worker["env"] if e["name"] != "DATABASE_URL"]
    assert checks.required_env_problems(manifests) == [
        "cpu-worker.yaml: Deployment/montage-cpu-worker container worker: missing DATABASE_URL"
    ]


def test_credentials_come_from_secrets_only(committed):
    assert checks.secret_problems(committed) == []


def test_a_literal_secret_key_is_found(manifests):
    entry = env_entry(container(manifests, "montage-ws"), "SECRET_KEY")
    entry.pop("valueFrom")
    entry["value"] = "x" * 64
    assert checks.secret_problems(manifests) == [
        "ws.yaml: Deployment/montage-ws container ws: SECRET_KEY must come from a secretKeyRef"
    ]


def test_a_credential_in_the_config_map_is_found(manifests):
    config = named(manifests, "ConfigMap", "montage-config").doc
    config["data"]["DATABASE_URL"] = "postgres://montage:hunter2@db/montage"
    problems = checks.secret_problems(manifests)
    assert problems[0] == (
        "configmap.yaml: ConfigMap/montage-config: DATABASE_URL is a credential; it belongs in "
        "a Secret"
    )


def test_a_committed_secret_object_is_found(manifests):
    manifests.append(
        Manifest(
            "secret.yaml",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "montage-secrets"}},
        )
    )
    assert checks.secret_problems(manifests) == [
        "secret.yaml: Secret/montage-secrets: Secret values do not belong in the repository"
    ]


def test_a_key_file_outside_the_secret_volume_is_found(manifests):
    config = named(manifests, "ConfigMap", "montage-config").doc
    config["data"]["GENERATION_SIGNING_KEY"] = "/var/lib/montage/key.pem"
    problems = checks.secret_problems(manifests)
    assert problems
    assert all("GENERATION_SIGNING_KEY=/var/lib/montage/key.pem is not on a" in p for p in problems)


def test_every_secret_key_is_documented():
    used = checks.secret_keys_used(checks.load_manifests())
    assert used == {
        "montage-secrets": {
            "SECRET_KEY",
            "DATABASE_URL",
            "REDIS_URL",
            "GENERATION_WATERMARK_KEY",
            "S3_ACCESS_KEY_ID",
            "S3_SECRET_ACCESS_KEY",
            "METRICS_TOKEN",
            "redis-address",
            "redis-password",
        },
        "montage-signing": {"cert.pem", "key.pem", "trust-anchors.pem", "ledger-key.pem"},
    }
    readme = checks.DEPLOY_README.read_text()
    undocumented = {
        f"{name}/{key}" for name, keys in used.items() for key in keys if f"`{key}`" not in readme
    }
    assert undocumented == set()


# --- Security and resources ---------------------------------------------------------------


def test_pods_are_restricted_read_only_and_bounded(committed):
    assert checks.security_problems(committed) == []


def test_security_mistakes_are_found(manifests):
    web = container(manifests, "montage-web")
    web["securityContext"]["readOnlyRootFilesystem"] = False
    web["volumeMounts"] = [m for m in web["volumeMounts"] if m["mountPath"] != "/tmp"]
    del web["resources"]["limits"]["memory"]
    assert checks.security_problems(manifests) == [
        "web.yaml: Deployment/montage-web container web: the root filesystem must be read-only",
        "web.yaml: Deployment/montage-web container web: /tmp needs a writable emptyDir",
        "web.yaml: Deployment/montage-web container web: no memory limits",
    ]


# --- Entry points -------------------------------------------------------------------------


def test_every_command_names_a_real_entry_point(committed, entry):
    assert entry.queues == {"gpu", "cpu"}
    assert {"migrate", "collectstatic", "create_api_key"} <= entry.management_commands
    assert checks.manifest_command_problems(committed, entry) == []
    workers = [c.argv for c in containers(committed, init=False) if "worker" in c.argv]
    assert checks.queue_consumer_problems(workers, entry.queues) == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python", "manage.py", "migrat"], "manage.py has no command 'migrat'"),
        (["gunicorn", "config.wsgi:app"], "gunicorn serves 'config.wsgi:app'"),
        (["uvicorn", "config.wsgi:application"], "uvicorn serves 'config.wsgi:application'"),
        (["celery", "-A", "montage", "beat", "-s", "/tmp/s"], "celery app 'montage'"),
        (
            ["celery", "--app=config", "worker", "--queues=gpux", "--hostname=gpu@%h"],
            "unknown queues ['gpux']",
        ),
        (["celery", "--app=config", "beat"], "beat writes its schedule to the read-only /app"),
        (["python", "deploy/make_bucket.py"], "no script deploy/make_bucket.py"),
        (["sh", "-c", "until python manage.py migrate --chek; do sleep 1; done"], None),
        (["python", "-c", "import urllib.request as u; u.urlopen("], "does not compile"),
    ],
    ids=[
        "manage-typo",
        "wsgi-attribute",
        "asgi-module",
        "celery-app",
        "queue",
        "beat-schedule",
        "script",
        "shell-script",
        "python-c",
    ],
)
def test_a_command_without_an_entry_point_is_found(entry, argv, expected):
    problems = checks.command_problems(argv, entry, where="here")
    if expected is None:
        # An unknown option is for manage.py to refuse; the command itself exists.
        assert problems == []
    else:
        assert len(problems) == 1
        assert expected in problems[0]


def test_a_queue_without_a_worker_is_found(committed, entry):
    workers = [
        c.argv
        for c in containers(committed, init=False)
        if "worker" in c.argv and option(c.argv, "--queues") != "cpu"
    ]
    problems = checks.queue_consumer_problems(workers, entry.queues)
    assert problems == ["no worker consumes the cpu queue"]


# --- Compose ------------------------------------------------------------------------------


def test_the_compose_file_runs_montage_as_production_does(compose, entry, known):
    assert checks.compose_problems(compose, entry, known, settings.CELERY_TASK_TIME_LIMIT) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["services"]["gpu"].pop("deploy"),
            "compose gpu: needs a GPU device reservation",
        ),
        (
            lambda c: c["services"]["gpu"]["build"]["args"].__setitem__("VARIANT", "cpu"),
            "compose gpu: must be built with VARIANT=cuda",
        ),
        (
            lambda c: c["services"]["web"].__setitem__(
                "environment", {**c["services"]["web"]["environment"], "SECRET_KEY": "s" * 60}
            ),
            "compose web: SECRET_KEY is a literal value",
        ),
        (
            lambda c: c["services"]["postgres"]["environment"].__setitem__(
                "POSTGRES_PASSWORD", "${POSTGRES_PASSWORD:-montage}"
            ),
            "compose postgres: POSTGRES_PASSWORD has a literal default 'montage'",
        ),
        (
            lambda c: c["services"]["cpu"].__setitem__(
                "environment",
                {
                    **c["services"]["cpu"]["environment"],
                    "DATABASE_URL": "postgres://montage:secret@postgres/montage",
                },
            ),
            "compose cpu: DATABASE_URL carries a literal password",
        ),
        (
            lambda c: c["services"]["beat"].pop("depends_on"),
            "compose beat: must start after migrate has completed",
        ),
        (
            lambda c: c["services"]["cpu"].__setitem__("stop_grace_period", "10s"),
            "compose cpu: stop_grace_period 10 s must exceed the task limit 1800",
        ),
        (
            lambda c: c["services"]["ws"]["healthcheck"]["test"].__setitem__(
                3, "import urllib.request as u; u.urlopen('http://127.0.0.1:8001/status')"
            ),
            "compose ws: health check asks /status",
        ),
        (lambda c: c["services"].pop("minio"), "no minio service"),
        (
            lambda c: c["services"]["web"].pop("tmpfs"),
            "compose web: PROMETHEUS_MULTIPROC_DIR /tmp/prometheus needs a tmpfs",
        ),
        (
            lambda c: c["services"]["web"].__setitem__("command", ["gunicorn", "config.asgi:app"]),
            "compose web: gunicorn serves 'config.asgi:app', not config.wsgi:application",
        ),
    ],
    ids=[
        "no-gpu",
        "cpu-image-for-gpu",
        "literal-secret",
        "default-password",
        "password-in-url",
        "no-migration-wait",
        "short-grace",
        "health-path",
        "no-object-store",
        "no-metrics-tmpfs",
        "wrong-app",
    ],
)
def test_compose_mistakes_are_found(compose, entry, known, change, expected):
    change(compose)
    problems = checks.compose_problems(compose, entry, known, settings.CELERY_TASK_TIME_LIMIT)
    assert expected in problems, problems


def test_every_compose_variable_is_documented():
    readme = checks.DEPLOY_README.read_text()
    variables = checks.compose_variables()
    assert {"SECRET_KEY", "POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "MONTAGE_SECRETS_DIR"} <= (
        variables
    )
    assert {name for name in variables if f"`{name}`" not in readme} == set()


# --- Dockerfile ---------------------------------------------------------------------------


def test_the_dockerfile_builds_one_image_in_two_variants_as_a_non_root_user():
    assert checks.dockerfile_problems(DOCKERFILE.read_text()) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("USER 10001:10001", "USER root", "the final stage must run as a numeric non-root USER"),
        ("python manage.py collectstatic", "python manage.py check", "static files must be"),
        ("ARG VARIANT=cpu", "ARG VARIANT=cuda", "ARG VARIANT must default to cpu"),
        (
            "    HOME=/home/montage",
            "    HOME=/home/montage \\\n    SECRET_KEY=baked-in",
            "ENV SECRET_KEY: no secret is set at build time",
        ),
        ('ENTRYPOINT ["/usr/bin/tini", "--"]', 'ENTRYPOINT ["python"]', "tini must be PID 1"),
        (
            'CMD ["gunicorn", "config.wsgi:application",',
            'CMD ["gunicorn", "config.asgi:application",',
            "the default command must serve config.wsgi:application",
        ),
    ],
    ids=["root", "no-collectstatic", "default-variant", "baked-secret", "no-init", "cmd"],
)
def test_dockerfile_mistakes_are_found(old, new, expected):
    text = DOCKERFILE.read_text()
    assert old in text
    problems = checks.dockerfile_problems(text.replace(old, new))
    assert len(problems) == 1
    assert problems[0].startswith(expected)


def test_the_image_build_context_leaves_out_environments_data_and_keys():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".data", "**/__pycache__", ".ruff_cache", ".pytest_cache"} <= ignored
    assert {"**/.env", "**/*.pem", "**/*.key"} <= ignored
    # What the image needs is not excluded.
    for needed in ("manage.py", "config", "deploy", "pyproject.toml", "generation"):
        assert needed not in ignored


def test_the_deploy_readme_gives_the_commands():
    readme = checks.DEPLOY_README.read_text()
    assert "are not part of this tree" not in readme
    for command in (
        "docker build -f deploy/Dockerfile",
        "--build-arg VARIANT=cuda",
        "docker compose -f deploy/docker-compose.yml up",
        "kubectl apply -k deploy/k8s",
    ):
        assert command in readme
