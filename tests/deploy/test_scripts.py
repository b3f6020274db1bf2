"""The scripts under deploy/ and the environment the deployment gives Montage.

deploy/requirements.py and deploy/s3_bucket.py run as the image build and the compose
one-shot run them (a local S3 server from moto stands in for MinIO). Then the settings are
loaded in production mode, in a fresh interpreter, with exactly the environment a Kubernetes
pod and a compose service would get: if a required variable or file were missing, start-up
would fail here as it would in the cluster.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from moto.server import ThreadedMotoServer

from generation.provenance.keys import LEAF_CERT, LEAF_KEY, ROOT_CERT, dev_credentials
from tests.deploy import checks
from tests.fixtures import ROOT

REQUIREMENTS = ROOT / "deploy" / "requirements.py"
S3_BUCKET_SCRIPT = ROOT / "deploy" / "s3_bucket.py"


# --- deploy/requirements.py ---------------------------------------------------------------


def test_requirements_split_pins_the_projects_torch(tmp_path):
    torch_out, requirements_out = tmp_path / "torch.txt", tmp_path / "requirements.txt"
    result = subprocess.run(
        [
            sys.executable,
            str(REQUIREMENTS),
            str(ROOT / "pyproject.toml"),
            str(torch_out),
            str(requirements_out),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert torch_out.read_text() == "torch==2.13.0\n"
    assert checks.pyproject_torch_pin() == "torch==2.13.0"
    import tomllib

    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert requirements_out.read_text().splitlines() == dependencies


@pytest.mark.parametrize(
    "dependencies",
    [
        ["torch>=2.13"],
        ["numpy>=2"],
        ["torch==2.13.0", "torch==2.12.0"],
    ],
    ids=["unpinned", "missing", "twice"],
)
def test_requirements_split_refuses_a_torch_that_is_not_pinned_once(tmp_path, dependencies):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project]\nname = 'x'\ndependencies = " + json.dumps(dependencies) + "\n")
    result = subprocess.run(
        [
            sys.executable,
            str(REQUIREMENTS),
            str(pyproject),
            str(tmp_path / "t"),
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "must pin torch with == exactly once" in result.stderr
    assert not (tmp_path / "t").exists()


def test_requirements_split_keeps_torch_lookalikes_apart(tmp_path):
    spec = importlib.util.spec_from_file_location("deploy_requirements", REQUIREMENTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        "[project]\nname = 'x'\ndependencies = ['torchvision==0.28.0', 'torch-geometric>=2', "
        "' torch == 2.13.0 ', 'torchmetrics']\n"
    )
    torch, dependencies = module.split(pyproject)
    assert torch == "torch == 2.13.0"
    assert dependencies == [
        "torchvision==0.28.0",
        "torch-geometric>=2",
        "torch == 2.13.0",
        "torchmetrics",
    ]


# --- deploy/s3_bucket.py ------------------------------------------------------------------


BUCKET = "montage-deploy-check"


@pytest.fixture
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its buckets per test process, not per server (other tests' buckets live
    # there too): start without this test's bucket, and leave none behind.
    _drop_bucket(endpoint)
    yield endpoint
    _drop_bucket(endpoint)
    server.stop()


def _drop_bucket(endpoint: str) -> None:
    s3 = client(endpoint)
    if BUCKET in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=item["Key"])
        s3.delete_bucket(Bucket=BUCKET)


@pytest.fixture
def unused_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_bucket_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(S3_BUCKET_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "NO_PROXY": "*", **env},
        check=False,
    )


def s3_env(endpoint: str, **extra: str) -> dict[str, str]:
    return {
        "S3_BUCKET": BUCKET,
        "S3_ENDPOINT_URL": endpoint,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "montage",
        "S3_SECRET_ACCESS_KEY": "montage-secret-access-key",
        **extra,
    }


def client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="montage",
        aws_secret_access_key="montage-secret-access-key",
    )


def test_bucket_script_creates_the_bucket_once(s3_server):
    first = run_bucket_script(s3_env(s3_server))
    assert (first.returncode, first.stdout.strip()) == (0, f"s3_bucket: {BUCKET} created")
    second = run_bucket_script(s3_env(s3_server))
    assert (second.returncode, second.stdout.strip()) == (0, f"s3_bucket: {BUCKET} exists")
    names = [b["Name"] for b in client(s3_server).list_buckets()["Buckets"]]
    assert names.count(BUCKET) == 1


def test_bucket_script_creates_the_bucket_in_its_region(s3_server):
    result = run_bucket_script(s3_env(s3_server, S3_REGION="eu-west-1"))
    assert result.returncode == 0, result.stderr
    location = client(s3_server).get_bucket_location(Bucket=BUCKET)
    assert location["LocationConstraint"] == "eu-west-1"


def test_bucket_script_gives_up_on_a_server_that_never_answers(unused_tcp_port):
    started = time.monotonic()
    result = run_bucket_script(s3_env(f"http://127.0.0.1:{unused_tcp_port}"), "--wait", "2")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "s3_bucket: no answer within 2 s" in result.stderr
    assert elapsed < 30


def test_bucket_script_needs_a_bucket_name(s3_server):
    env = s3_env(s3_server)
    del env["S3_BUCKET"]
    result = run_bucket_script(env)
    assert (result.returncode, result.stderr.strip()) == (2, "s3_bucket: S3_BUCKET is not set")
    assert BUCKET not in [b["Name"] for b in client(s3_server).list_buckets()["Buckets"]]


# --- Production start-up with the deployment's environment --------------------------------

REPORT = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'ALLOWED_HOSTS': s.ALLOWED_HOSTS, 'DEBUG': s.DEBUG, "
    "'SIGNING_CERT': s.GENERATION_SIGNING_CERT, 'SIGNING_KEY': s.GENERATION_SIGNING_KEY, "
    "'LEDGER_KEY': s.CAMEO_LEDGER_KEY, 'TRUST_ANCHORS': s.GENERATION_TRUST_ANCHORS, "
    "'TRUSTED_PROXY_COUNT': s.TRUSTED_PROXY_COUNT, 'LOG_FORMATTER': "
    "s.LOGGING['handlers']['console']['formatter'], 'TIME_LIMIT': s.CELERY_TASK_TIME_LIMIT}))"
)


@pytest.fixture(scope="module")
def signing_files(tmp_path_factory):
    """A signing chain and a ledger key, under the file names each deployment mounts."""
    directory = tmp_path_factory.mktemp("signing")
    dev_credentials(directory)
    ledger = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (directory / "ledger.pem").write_bytes(ledger)
    # Kubernetes: the keys of the montage-signing Secret.
    k8s = directory / "k8s"
    k8s.mkdir()
    for source, name in (
        (LEAF_CERT, "cert.pem"),
        (LEAF_KEY, "key.pem"),
        (ROOT_CERT, "trust-anchors.pem"),
        ("ledger.pem", "ledger-key.pem"),
    ):
        (k8s / name).write_bytes((directory / source).read_bytes())
    return directory


def image_environment(tmp_path) -> dict[str, str]:
    """What the image's ENV gives every container (deploy/Dockerfile), with this machine's
    paths for the interpreter and the writable directories."""
    return {
        "PATH": f"{sys.prefix}/bin:/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MONTAGE_ENV": "production",
        "MONTAGE_DATA_DIR": str(tmp_path / "data"),
        "STATIC_ROOT": str(tmp_path / "static"),
        "HOME": str(tmp_path / "home"),
    }


def start(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", REPORT],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    return json.loads(stdout.strip().splitlines()[-1])


def test_production_settings_start_with_the_environment_of_each_deployment(tmp_path, signing_files):
    manifests = checks.load_manifests()
    mount = "/etc/montage/signing"
    secret_values = {
        ("montage-secrets", "SECRET_KEY"): secrets.token_urlsafe(64),
        ("montage-secrets", "GENERATION_WATERMARK_KEY"): secrets.token_urlsafe(32),
        ("montage-secrets", "DATABASE_URL"): "postgres://montage:pw@db.internal:5432/montage",
        ("montage-secrets", "REDIS_URL"): "redis://:pw@redis.internal:6379/0",
    }
    fields = {"status.podIP": "10.1.2.3"}
    processes = {}
    for container in checks.containers(manifests):
        env = checks.resolved_env(container, manifests, secrets=secret_values, fields=fields)
        env = {k: v.replace("/tmp/", f"{tmp_path}/") for k, v in env.items()}
        for name in checks.SECRET_FILE_SETTINGS & env.keys():
            env[name] = env[name].replace(mount, str(signing_files / "k8s"))
        key = (container.manifest.doc["metadata"]["name"], container.spec["name"])
        processes[key] = {**image_environment(tmp_path), **env}

    compose = checks.load_compose()
    interpolated = {
        "SECRET_KEY": secrets.token_urlsafe(64),
        "GENERATION_WATERMARK_KEY": secrets.token_urlsafe(32),
        "POSTGRES_PASSWORD": "pw",
        "MINIO_ROOT_USER": "montage",
        "MINIO_ROOT_PASSWORD": "minio-password",
    }
    compose_files = {
        "signing_cert": LEAF_CERT,
        "signing_key": LEAF_KEY,
        "trust_anchors": ROOT_CERT,
        "ledger_key": "ledger.pem",
    }
    for name, service in checks.montage_services(compose).items():
        env = {}
        for key, value in service["environment"].items():
            value = checks.INTERPOLATION.sub(
                lambda m: interpolated.get(m.group(1), m.group(3) if m.group(2) == ":-" else ""),
                str(value),
            )
            value = value.replace("/tmp/", f"{tmp_path}/")
            if value.startswith("/run/secrets/"):
                value = str(signing_files / compose_files[value.removeprefix("/run/secrets/")])
            env[key] = value
        processes[("compose", name)] = {**image_environment(tmp_path), **env}

    # The deployments mount a volume at PROMETHEUS_MULTIPROC_DIR (checked in test_manifests).
    for env in processes.values():
        if env.get("PROMETHEUS_MULTIPROC_DIR"):
            Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

    # Settings are read once per process: one interpreter per distinct environment, all at once.
    distinct = {}
    for key, env in processes.items():
        distinct.setdefault(json.dumps(env, sort_keys=True), []).append(key)
    running = {json_env: start(json.loads(json_env)) for json_env in distinct}
    reports = {json_env: finish(process) for json_env, process in running.items()}
    by_process = {key: reports[json_env] for json_env, keys in distinct.items() for key in keys}

    web = by_process[("montage-web", "web")]
    assert web["ALLOWED_HOSTS"] == ["montage.example.com", "10.1.2.3"]
    assert web["DEBUG"] is False
    assert web["SIGNING_CERT"] == str(signing_files / "k8s" / "cert.pem")
    assert web["LEDGER_KEY"] == str(signing_files / "k8s" / "ledger-key.pem")
    assert web["TRUST_ANCHORS"] == str(signing_files / "k8s" / "trust-anchors.pem")
    assert web["TRUSTED_PROXY_COUNT"] == 1
    assert web["LOG_FORMATTER"] == "json"
    assert by_process[("montage-gpu-worker", "worker")]["ALLOWED_HOSTS"] == ["montage.example.com"]
    assert by_process[("montage-gpu-worker", "worker")]["TIME_LIMIT"] == 1800
    compose_web = by_process[("compose", "web")]
    assert compose_web["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1"]
    assert compose_web["SIGNING_KEY"] == str(signing_files / LEAF_KEY)
    assert compose_web["TRUSTED_PROXY_COUNT"] == 1
    assert set(by_process) >= {
        ("montage-migrate", "migrate"),
        ("montage-beat", "wait-for-migrations"),
        ("compose", "gpu"),
        ("compose", "bucket"),
    }
