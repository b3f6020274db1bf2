"""Checks of the deployment artefacts (deploy/): each returns the problems it finds.

A schema says whether one object is well-formed; these say whether the objects fit together
and fit Montage: a selector that selects nothing, an env var no setting reads, a probe that
Django would answer with 400, a queue that no worker consumes. The tests run each check on
the committed files (no problem) and on a copy with a planted mistake (that problem).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import yaml

from tests.fixtures import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DEPLOY_README = DEPLOY / "README.md"
SCHEMAS = Path(__file__).resolve().parent / "schemas"

# The Kubernetes release whose schemas (shipped inside kubernetes-validate) the manifests are
# held to: autoscaling/v2, policy/v1 and the lifecycle sleep action are all GA there.
KUBERNETES_VERSION = "1.34.0"
KEDA_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-triggerauthentication.json",
}

# Settings whose values are credentials, or URLs that may carry one: they reach a container
# from a Secret only.
SECRET_SETTINGS = {
    "SECRET_KEY",
    "JWT_SIGNING_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "GENERATION_WATERMARK_KEY",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "METRICS_TOKEN",
}
# Settings that name a file holding key material: the file comes from a Secret volume.
SECRET_FILE_SETTINGS = {
    "GENERATION_SIGNING_CERT",
    "GENERATION_SIGNING_KEY",
    "GENERATION_TRUST_ANCHORS",
    "GENERATION_TRUST_ANCHORS_EXTRA",
    "CAMEO_LEDGER_KEY",
}
# What config/settings.py refuses to start without when MONTAGE_ENV=production.
REQUIRED_IN_PRODUCTION = {
    "MONTAGE_ENV",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "GENERATION_SIGNING_CERT",
    "GENERATION_SIGNING_KEY",
}
# Paths the image leaves writable to its user; with a read-only root filesystem each needs a
# volume of its own.
WRITABLE_PATHS = {"/tmp", "/home/montage", "/var/lib/montage"}
ENV_READERS = {"env_str", "env_bool", "env_int", "env_list"}
EXPANSION = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# --- Loading ------------------------------------------------------------------------------


@dataclass
class Manifest:
    file: str
    doc: dict

    @property
    def ref(self) -> str:
        return f"{self.file}: {self.doc.get('kind')}/{self.doc.get('metadata', {}).get('name')}"


def load_manifests(directory: Path = K8S) -> list[Manifest]:
    manifests = []
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                manifests.append(Manifest(path.name, doc))
    return manifests


def load_compose(path: Path = COMPOSE) -> dict:
    return yaml.safe_load(path.read_text())


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.doc.get("kind") == kind]


def named(manifests: list[Manifest], kind: str, name: str) -> Manifest | None:
    for m in of_kind(manifests, kind):
        if m.doc["metadata"]["name"] == name:
            return m
    return None


# --- Schemas ------------------------------------------------------------------------------


@cache
def keda_schema(file_name: str) -> dict:
    return json.loads((SCHEMAS / file_name).read_text())


def schema_problems(manifest: Manifest) -> list[str]:
    """The object against its schema: Kubernetes' own (strict: unknown fields fail) for core
    kinds, ours (tests/deploy/schemas) for KEDA's."""
    doc = manifest.doc
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key[0] and key[0].startswith("keda.sh/"):
        if key not in KEDA_SCHEMAS:
            return [f"{manifest.ref}: no schema for {key}"]
        validator = jsonschema.Draft202012Validator(keda_schema(KEDA_SCHEMAS[key]))
        return [
            f"{manifest.ref}: {'.'.join(map(str, error.absolute_path)) or '(root)'}: "
            f"{error.message}"
            for error in validator.iter_errors(doc)
        ]
    try:
        checked = kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{manifest.ref}: {'.'.join(map(str, error.path))}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{manifest.ref}: {error.message}"]
    if checked != KUBERNETES_VERSION.rsplit(".", 1)[0]:
        return [f"{manifest.ref}: validated against {checked}, not {KUBERNETES_VERSION}"]
    return []


# --- Containers and their processes -------------------------------------------------------


@dataclass
class Container:
    manifest: Manifest
    spec: dict
    init: bool

    @property
    def ref(self) -> str:
        kind = "init container" if self.init else "container"
        return f"{self.manifest.ref} {kind} {self.spec['name']}"

    @property
    def pod(self) -> dict:
        return pod_template(self.manifest.doc)["spec"]

    @property
    def argv(self) -> list[str]:
        return [*self.spec.get("command", []), *self.spec.get("args", [])]


def pod_template(doc: dict) -> dict:
    return doc["spec"]["template"]


def workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m.doc.get("kind") in {"Deployment", "Job"}]


def containers(manifests: list[Manifest], *, init: bool = True) -> Iterator[Container]:
    for manifest in workloads(manifests):
        spec = pod_template(manifest.doc)["spec"]
        if init:
            for container in spec.get("initContainers", []):
                yield Container(manifest, container, True)
        for container in spec["containers"]:
            yield Container(manifest, container, False)


def process_kind(argv: list[str]) -> str:
    """What a Montage container runs: rest, ws, worker, beat, manage or shell."""
    if not argv:
        return "image default"
    program = Path(argv[0]).name
    if program == "gunicorn":
        return "rest"
    if program == "uvicorn":
        return "ws"
    if program == "celery":
        words = [a for a in argv[1:] if not a.startswith("-")]
        for word in words:
            if word in {"worker", "beat", "inspect"}:
                return word
        return "celery"
    if program.startswith("python") and argv[1:2] == ["manage.py"]:
        return "manage"
    if program in {"sh", "bash"}:
        return "shell"
    return program


def option(argv: list[str], *names: str) -> str | None:
    """The value of a command-line option given as --name=value or --name value."""
    for index, arg in enumerate(argv):
        for name in names:
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
            if arg == name and index + 1 < len(argv):
                return argv[index + 1]
    return None


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script (redirections and control words dropped)."""
    # A command substitution is one word here; shlex would split it at its parentheses.
    script = re.sub(r"\$\([^)]*\)", "SUBSTITUTED", script)
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current, skip_next = [], [], False
    for token in lexer:
        if skip_next:
            skip_next = False
            continue
        if token in {";", "&&", "||", "|", "&", "(", ")", ";;"}:
            commands.append(current)
            current = []
        elif token in {">", ">>", "<", "2>", ">&", "<&"}:
            skip_next = True
        elif not current and token in {"until", "while", "do", "done", "if", "then", "fi"}:
            continue
        else:
            current.append(token)
    commands.append(current)
    return [command for command in commands if command]


def expanded_argvs(argv: list[str]) -> list[list[str]]:
    """argv itself, or the commands of its script for `sh -c SCRIPT`."""
    if argv[:2] in (["sh", "-c"], ["bash", "-c"]) and len(argv) == 3:
        return shell_commands(argv[2])
    return [argv]


def exec_probe_argvs(container: Container) -> list[list[str]]:
    argvs = []
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = container.spec.get(probe, {}).get("exec", {}).get("command")
        if command:
            argvs.extend(expanded_argvs(command))
    return argvs


# --- Environment --------------------------------------------------------------------------


def _settings_modules() -> list[Path]:
    """config/settings.py and the config modules it imports (config.embedded)."""
    settings = ROOT / "config" / "settings.py"
    paths = [settings]
    for node in ast.walk(ast.parse(settings.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "config":
            paths += [ROOT / "config" / f"{alias.name}.py" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("config."):
            paths.append(ROOT / (node.module.replace(".", "/") + ".py"))
    return [path for path in paths if path.is_file()]


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _first_string(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def settings_env_names(paths: list[Path] | None = None) -> set[str]:
    """Every environment variable the settings read: env_str/env_bool/env_int/env_list,
    os.environ.get, os.environ[...] and os.getenv with a literal name."""
    names: set[str] = set()
    for path in paths or _settings_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                reader = (
                    (isinstance(func, ast.Name) and func.id in ENV_READERS)
                    or (
                        isinstance(func, ast.Attribute)
                        and func.attr == "get"
                        and _is_os_environ(func.value)
                    )
                    or (
                        isinstance(func, ast.Attribute)
                        and func.attr == "getenv"
                        and isinstance(func.value, ast.Name)
                        and func.value.id == "os"
                    )
                )
                if reader and (name := _first_string(node)):
                    names.add(name)
            elif (
                isinstance(node, ast.Subscript)
                and _is_os_environ(node.value)
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)
            ):
                names.add(node.slice.value)
    return names


def config_map_data(manifests: list[Manifest], name: str) -> dict[str, str] | None:
    manifest = named(manifests, "ConfigMap", name)
    return None if manifest is None else manifest.doc.get("data", {})


def container_env(container: Container, manifests: list[Manifest]) -> dict[str, dict]:
    """Name -> source for every variable the container gets, envFrom first (the kubelet's
    order), each source {'value': ...} or {'secret': (name, key)} or {'field': path}."""
    env: dict[str, dict] = {}
    for source in container.spec.get("envFrom", []):
        if "configMapRef" in source:
            data = config_map_data(manifests, source["configMapRef"]["name"]) or {}
            for key, value in data.items():
                env[key] = {"value": value, "from": "configMap"}
        elif "secretRef" in source:
            env["*secretRef:" + source["secretRef"]["name"]] = {"secretRef": True}
    for entry in container.spec.get("env", []):
        value_from = entry.get("valueFrom", {})
        if "value" in entry:
            env[entry["name"]] = {"value": entry["value"], "from": "env"}
        elif "secretKeyRef" in value_from:
            ref = value_from["secretKeyRef"]
            env[entry["name"]] = {
                "secret": (ref["name"], ref["key"]),
                "optional": ref.get("optional"),
            }
        elif "configMapKeyRef" in value_from:
            ref = value_from["configMapKeyRef"]
            data = config_map_data(manifests, ref["name"]) or {}
            env[entry["name"]] = {"value": data.get(ref["key"]), "from": "configMap"}
        elif "fieldRef" in value_from:
            env[entry["name"]] = {"field": value_from["fieldRef"]["fieldPath"]}
        else:
            env[entry["name"]] = {"other": value_from}
    return env


def expand(value: str, env: dict[str, str]) -> str:
    """The kubelet's $(NAME) expansion: known names are replaced, unknown ones kept."""
    return EXPANSION.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def resolved_env(
    container: Container,
    manifests: list[Manifest],
    *,
    secrets: dict[tuple[str, str], str],
    fields: dict[str, str],
) -> dict[str, str]:
    """The environment the kubelet would give the container, with Secret values and field
    values supplied by the caller: envFrom first, then env in order, each env value's $(NAME)
    expanded against what is defined so far."""
    env: dict[str, str] = {}
    for source in container.spec.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_map_data(manifests, source["configMapRef"]["name"]) or {})
        else:
            raise KeyError(f"{container.ref}: cannot resolve envFrom {source}")
    for entry in container.spec.get("env", []):
        value_from = entry.get("valueFrom", {})
        if "value" in entry:
            env[entry["name"]] = expand(entry["value"], env)
        elif "secretKeyRef" in value_from:
            ref = value_from["secretKeyRef"]
            if (ref["name"], ref["key"]) in secrets:
                env[entry["name"]] = secrets[(ref["name"], ref["key"])]
            elif not ref.get("optional"):
                raise KeyError(f"{container.ref}: no value for Secret key {ref['key']}")
        elif "fieldRef" in value_from:
            env[entry["name"]] = fields[value_from["fieldRef"]["fieldPath"]]
        elif "configMapKeyRef" in value_from:
            ref = value_from["configMapKeyRef"]
            env[entry["name"]] = (config_map_data(manifests, ref["name"]) or {})[ref["key"]]
        else:
            raise KeyError(f"{container.ref}: cannot resolve {entry['name']}")
    return env


def env_problems(manifests: list[Manifest], known: set[str]) -> list[str]:
    """Every variable a container gets is one the settings read, or one that another
    variable of the same container expands ($(POD_IP))."""
    problems = []
    for container in containers(manifests):
        env = container_env(container, manifests)
        expanded = {
            ref
            for source in env.values()
            if source.get("from") == "env" and isinstance(source.get("value"), str)
            for ref in EXPANSION.findall(source["value"])
        }
        for name, source in env.items():
            if name.startswith("*secretRef:"):
                problems.append(
                    f"{container.ref}: envFrom secretRef {name.split(':', 1)[1]} hides which "
                    "variables it sets; name each with secretKeyRef"
                )
            elif name not in known and name not in expanded:
                problems.append(f"{container.ref}: {name} is read by no setting")
            if "other" in source:
                problems.append(f"{container.ref}: {name} has an unsupported source")
    return problems


def required_env_problems(manifests: list[Manifest]) -> list[str]:
    """Production settings refuse to start without these; every container gets them."""
    problems = []
    for container in containers(manifests):
        env = container_env(container, manifests)
        missing = REQUIRED_IN_PRODUCTION - env.keys()
        if missing:
            problems.append(f"{container.ref}: missing {', '.join(sorted(missing))}")
        mode = env.get("MONTAGE_ENV", {}).get("value")
        if mode is not None and mode != "production":
            problems.append(f"{container.ref}: MONTAGE_ENV is {mode!r}, not production")
    return problems


def secret_problems(manifests: list[Manifest]) -> list[str]:
    """Credentials come from Secret objects only: no Secret with values in the manifests,
    no credential in a ConfigMap or an env value, key files on Secret volumes."""
    problems = []
    for manifest in of_kind(manifests, "Secret"):
        problems.append(f"{manifest.ref}: Secret values do not belong in the repository")
    for manifest in of_kind(manifests, "ConfigMap"):
        for key in manifest.doc.get("data", {}):
            if key in SECRET_SETTINGS:
                problems.append(f"{manifest.ref}: {key} is a credential; it belongs in a Secret")
    for container in containers(manifests):
        env = container_env(container, manifests)
        for name, source in env.items():
            if name in SECRET_SETTINGS and "secret" not in source:
                problems.append(f"{container.ref}: {name} must come from a secretKeyRef")
        secret_mounts = _secret_mount_paths(container)
        for name in SECRET_FILE_SETTINGS & env.keys():
            path = env[name].get("value")
            if not path or not any(path.startswith(mount + "/") for mount in secret_mounts):
                problems.append(f"{container.ref}: {name}={path} is not on a Secret volume")
    return problems


def _secret_mount_paths(container: Container) -> list[str]:
    secret_volumes = {
        volume["name"] for volume in container.pod.get("volumes", []) if "secret" in volume
    }
    return [
        mount["mountPath"].rstrip("/")
        for mount in container.spec.get("volumeMounts", [])
        if mount["name"] in secret_volumes
    ]


def secret_keys_used(manifests: list[Manifest]) -> dict[str, set[str]]:
    """Secret name -> keys the manifests read from it (env, TriggerAuthentication, and the
    files the settings expect on Secret volumes)."""
    used: dict[str, set[str]] = {}
    for container in containers(manifests):
        env = container_env(container, manifests)
        for source in env.values():
            if "secret" in source:
                name, key = source["secret"]
                used.setdefault(name, set()).add(key)
        mounts = {
            mount["mountPath"].rstrip("/"): mount["name"]
            for mount in container.spec.get("volumeMounts", [])
        }
        volumes = {volume["name"]: volume for volume in container.pod.get("volumes", [])}
        for name in SECRET_FILE_SETTINGS & env.keys():
            path = env[name].get("value") or ""
            directory, _, file_name = path.rpartition("/")
            volume = volumes.get(mounts.get(directory, ""), {})
            if "secret" in volume:
                used.setdefault(volume["secret"]["secretName"], set()).add(file_name)
    for manifest in of_kind(manifests, "TriggerAuthentication"):
        for ref in manifest.doc["spec"].get("secretTargetRef", []):
            used.setdefault(ref["name"], set()).add(ref["key"])
    return used


# --- Probes, security, resources ----------------------------------------------------------


def _container_ports(container: Container) -> dict:
    ports = {}
    for port in container.spec.get("ports", []):
        ports[port["containerPort"]] = port
        if "name" in port:
            ports[port["name"]] = port
    return ports


def probe_problems(manifests: list[Manifest]) -> list[str]:
    """HTTP servers: /healthz liveness and /readyz readiness on their own port, reachable by
    pod IP (kubelet sends the pod IP as Host, which Django must allow). Celery workers: an
    exec probe that pings the worker's own node over the broker. Beat: none (it answers
    neither HTTP nor broadcasts)."""
    problems = []
    config_hosts = set(
        ((config_map_data(manifests, "montage-config") or {}).get("ALLOWED_HOSTS") or "").split(",")
    )
    for container in containers(manifests, init=False):
        if container.manifest.doc["kind"] != "Deployment":
            continue
        kind = process_kind(container.argv)
        spec = container.spec
        if kind in {"rest", "ws"}:
            ports = _container_ports(container)
            for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                http = spec.get(probe, {}).get("httpGet")
                if not http:
                    problems.append(f"{container.ref}: {probe} must be an httpGet of {path}")
                    continue
                if http.get("path") != path:
                    problems.append(f"{container.ref}: {probe} asks {http.get('path')}, not {path}")
                if http.get("port") not in ports:
                    problems.append(f"{container.ref}: {probe} port {http.get('port')} not served")
                host = next(
                    (
                        h["value"]
                        for h in http.get("httpHeaders", [])
                        if h["name"].lower() == "host"
                    ),
                    None,
                )
                if host is not None and host not in config_hosts:
                    problems.append(f"{container.ref}: {probe} Host {host} not in ALLOWED_HOSTS")
                if host is None and not _allows_pod_ip(container, manifests):
                    problems.append(
                        f"{container.ref}: {probe} reaches Django with the pod IP as Host; "
                        "ALLOWED_HOSTS must include $(POD_IP) (fieldRef status.podIP)"
                    )
        elif kind == "worker":
            node = option(container.argv, "--hostname", "-n")
            pings = [
                argv
                for argv in exec_probe_argvs(container)
                if process_kind(argv) == "inspect" and "ping" in argv
            ]
            liveness = spec.get("livenessProbe", {}).get("exec")
            if not liveness or not pings:
                problems.append(
                    f"{container.ref}: a worker needs an exec liveness probe that "
                    "runs celery inspect ping"
                )
            prefix = (node or "").split("@", 1)[0]
            for argv in pings:
                destination = option(argv, "--destination", "-d") or ""
                if not node or not destination.startswith(prefix + "@"):
                    problems.append(
                        f"{container.ref}: the probe pings {destination or 'every node'}, not "
                        f"this worker ({node})"
                    )
        elif kind != "beat":
            problems.append(f"{container.ref}: no probe policy for a {kind} process")
    return problems


def _allows_pod_ip(container: Container, manifests: list[Manifest]) -> bool:
    env = container_env(container, manifests)
    hosts = env.get("ALLOWED_HOSTS", {})
    if hosts.get("from") != "env":
        return False
    refs = EXPANSION.findall(hosts.get("value") or "")
    return any(env.get(ref, {}).get("field") == "status.podIP" for ref in refs)


def security_problems(manifests: list[Manifest]) -> list[str]:
    """The restricted Pod Security Standard, a read-only root filesystem with a volume on
    every path the image writes, and requests and limits on every container."""
    problems = []
    for manifest in workloads(manifests):
        pod = pod_template(manifest.doc)["spec"]
        context = pod.get("securityContext", {})
        if context.get("runAsNonRoot") is not True:
            problems.append(f"{manifest.ref}: pod must set runAsNonRoot")
        if context.get("runAsUser") == 0:
            problems.append(f"{manifest.ref}: pod runs as root")
        if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{manifest.ref}: pod needs the RuntimeDefault seccomp profile")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{manifest.ref}: pods need no Kubernetes API token")
    for container in containers(manifests):
        context = container.spec.get("securityContext", {})
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{container.ref}: allowPrivilegeEscalation must be false")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{container.ref}: the root filesystem must be read-only")
        if context.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{container.ref}: capabilities must drop ALL")
        volumes = {v["name"]: v for v in container.pod.get("volumes", [])}
        mounted = {
            m["mountPath"].rstrip("/")
            for m in container.spec.get("volumeMounts", [])
            if "emptyDir" in volumes.get(m["name"], {}) and not m.get("readOnly")
        }
        for path in sorted(WRITABLE_PATHS - mounted):
            problems.append(f"{container.ref}: {path} needs a writable emptyDir")
        resources = container.spec.get("resources", {})
        for bound in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(bound, {}):
                    problems.append(f"{container.ref}: no {resource} {bound}")
    return problems


def metrics_dir_problems(manifests: list[Manifest]) -> list[str]:
    """prometheus_client opens files in PROMETHEUS_MULTIPROC_DIR as soon as Montage's apps
    load: the directory must exist before any process starts, so it is a volume's mount."""
    problems = []
    for container in containers(manifests):
        directory = container_env(container, manifests).get("PROMETHEUS_MULTIPROC_DIR", {})
        path = (directory.get("value") or "").rstrip("/")
        if not path:
            continue
        volumes = {v["name"]: v for v in container.pod.get("volumes", [])}
        mounted = {
            m["mountPath"].rstrip("/")
            for m in container.spec.get("volumeMounts", [])
            if "emptyDir" in volumes.get(m["name"], {}) and not m.get("readOnly")
        }
        if path not in mounted:
            problems.append(f"{container.ref}: PROMETHEUS_MULTIPROC_DIR {path} is no volume mount")
    return problems


def gpu_problems(manifests: list[Manifest]) -> list[str]:
    """The gpu queue's worker: one GPU, one process, on GPU nodes, from the CUDA image."""
    problems = []
    gpu_workers = [
        c
        for c in containers(manifests, init=False)
        if process_kind(c.argv) == "worker"
        and "gpu" in (option(c.argv, "--queues", "-Q") or "").split(",")
    ]
    if len(gpu_workers) != 1:
        problems.append(f"{len(gpu_workers)} Deployments consume the gpu queue, not 1")
    for container in gpu_workers:
        resources = container.spec.get("resources", {})
        limit = resources.get("limits", {}).get("nvidia.com/gpu")
        request = resources.get("requests", {}).get("nvidia.com/gpu", limit)
        if limit != 1 or request != limit:
            problems.append(f"{container.ref}: must request and limit nvidia.com/gpu: 1")
        if option(container.argv, "--queues", "-Q") != "gpu":
            problems.append(f"{container.ref}: a GPU worker consumes the gpu queue only")
        if option(container.argv, "--concurrency", "-c") != "1":
            problems.append(f"{container.ref}: a GPU worker runs one task at a time")
        pod = container.pod
        if not pod.get("nodeSelector"):
            problems.append(f"{container.ref}: needs a nodeSelector for GPU nodes")
        if not any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations", [])):
            problems.append(f"{container.ref}: needs a toleration for the nvidia.com/gpu taint")
        if not container.spec["image"].split(":")[0].endswith("cuda"):
            problems.append(f"{container.ref}: needs the CUDA image, not {container.spec['image']}")
    return problems


def beat_problems(manifests: list[Manifest]) -> list[str]:
    """Exactly one scheduler, never two at once (Recreate), never autoscaled."""
    problems = []
    beats = [
        c
        for c in containers(manifests, init=False)
        if process_kind(c.argv) == "beat" and c.manifest.doc["kind"] == "Deployment"
    ]
    if len(beats) != 1:
        problems.append(f"{len(beats)} Deployments run celery beat, not 1")
    for container in beats:
        spec = container.manifest.doc["spec"]
        if spec.get("replicas") != 1:
            problems.append(f"{container.ref}: replicas must be 1, not {spec.get('replicas')}")
        if spec.get("strategy", {}).get("type") != "Recreate":
            problems.append(f"{container.ref}: a rollout must stop the old scheduler first")
        name = container.manifest.doc["metadata"]["name"]
        if name in _autoscaled(manifests):
            problems.append(f"{container.ref}: the scheduler must not be autoscaled")
    return problems


def grace_problems(manifests: list[Manifest], default_time_limit: int) -> list[str]:
    """A stopped worker finishes its task (warm shutdown) before Kubernetes kills it, and
    Redis does not hand a running task to a second worker."""
    problems = []
    config = config_map_data(manifests, "montage-config") or {}
    time_limit = int(config.get("CELERY_TASK_TIME_LIMIT") or default_time_limit)
    visibility = int(config.get("CELERY_VISIBILITY_TIMEOUT") or 7200)
    if visibility <= time_limit:
        problems.append(
            f"CELERY_VISIBILITY_TIMEOUT {visibility} must exceed the task limit {time_limit}"
        )
    for container in containers(manifests, init=False):
        if process_kind(container.argv) == "worker":
            grace = container.pod.get("terminationGracePeriodSeconds", 30)
            if grace <= time_limit:
                problems.append(
                    f"{container.ref}: terminationGracePeriodSeconds {grace} must exceed the "
                    f"task time limit {time_limit}"
                )
    return problems


# --- Selectors, Services, Ingresses, autoscalers ------------------------------------------


def _matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pod_labels(manifest: Manifest) -> dict:
    return pod_template(manifest.doc)["metadata"].get("labels", {})


def selector_problems(manifests: list[Manifest]) -> list[str]:
    problems = []
    deployments = of_kind(manifests, "Deployment")
    for manifest in deployments:
        selector = manifest.doc["spec"]["selector"].get("matchLabels", {})
        if not _matches(selector, _pod_labels(manifest)):
            problems.append(f"{manifest.ref}: selector does not match its own pod labels")
        others = [
            other.ref
            for other in deployments
            if other is not manifest and _matches(selector, _pod_labels(other))
        ]
        if others:
            problems.append(f"{manifest.ref}: selector also matches {', '.join(others)}")
    for manifest in of_kind(manifests, "PodDisruptionBudget"):
        selector = manifest.doc["spec"].get("selector", {}).get("matchLabels", {})
        hits = [d for d in deployments if _matches(selector, _pod_labels(d))]
        if len(hits) != 1:
            problems.append(f"{manifest.ref}: selects {len(hits)} Deployments, not 1")
    for manifest in of_kind(manifests, "Service"):
        selector = manifest.doc["spec"].get("selector", {})
        hits = [d for d in deployments if _matches(selector, _pod_labels(d))]
        if not hits:
            problems.append(f"{manifest.ref}: selects no pods")
        for port in manifest.doc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            for deployment in hits:
                served = {
                    key
                    for c in pod_template(deployment.doc)["spec"]["containers"]
                    for p in c.get("ports", [])
                    for key in (p["containerPort"], p.get("name"))
                }
                if target not in served:
                    problems.append(
                        f"{manifest.ref}: targetPort {target} is not a port of {deployment.ref}"
                    )
    return problems


def _backends(ingress: dict) -> Iterator[tuple[str, str, dict]]:
    for rule in ingress["spec"].get("rules", []):
        for path in rule.get("http", {}).get("paths", []):
            yield rule.get("host", ""), path["path"], path["backend"]


def ingress_problems(manifests: list[Manifest]) -> list[str]:
    """Backends are existing Services and ports; /ws/ reaches the ASGI server and / the WSGI
    one; every host is one Django allows and trusts for CSRF."""
    problems = []
    config = config_map_data(manifests, "montage-config") or {}
    allowed = set((config.get("ALLOWED_HOSTS") or "").split(","))
    origins = set((config.get("CSRF_TRUSTED_ORIGINS") or "").split(","))
    routed: dict[str, str] = {}
    for manifest in of_kind(manifests, "Ingress"):
        for host, path, backend in _backends(manifest.doc):
            if host not in allowed:
                problems.append(f"{manifest.ref}: host {host!r} is not in ALLOWED_HOSTS")
            if f"https://{host}" not in origins:
                problems.append(f"{manifest.ref}: https://{host} is not in CSRF_TRUSTED_ORIGINS")
            service_ref = backend.get("service", {})
            service = named(manifests, "Service", service_ref.get("name", ""))
            if service is None:
                problems.append(f"{manifest.ref}: {path} -> no Service {service_ref.get('name')}")
                continue
            port = service_ref.get("port", {})
            ports = {
                key for p in service.doc["spec"]["ports"] for key in (p["port"], p.get("name"))
            }
            wanted = port.get("name", port.get("number"))
            if wanted not in ports:
                problems.append(f"{manifest.ref}: {path} -> {service.ref} has no port {wanted}")
            routed[path] = _serving_process(service, manifests)
    expected = {"/ws/": "ws", "/": "rest"}
    for path, kind in expected.items():
        if routed.get(path) != kind:
            problems.append(f"{path} must reach the {kind} process, not {routed.get(path)}")
    # Prometheus scrapes the pods; the public host must not serve the metrics.
    guarded = [
        manifest
        for manifest in of_kind(manifests, "Ingress")
        for _, path, _ in _backends(manifest.doc)
        if path == "/metrics" and _source_restricted(manifest.doc)
    ]
    if routed.get("/") and not guarded:
        problems.append("/ routes /metrics to the public; restrict it with its own Ingress")
    return problems


def _source_restricted(ingress: dict) -> bool:
    annotations = ingress["metadata"].get("annotations", {})
    ranges = annotations.get("nginx.ingress.kubernetes.io/whitelist-source-range")
    ranges = ranges or annotations.get("nginx.ingress.kubernetes.io/allowlist-source-range")
    return bool(ranges) and all(
        r.strip().startswith("127.") or r.strip() == "::1/128" for r in ranges.split(",")
    )


def _serving_process(service: Manifest, manifests: list[Manifest]) -> str | None:
    selector = service.doc["spec"].get("selector", {})
    for deployment in of_kind(manifests, "Deployment"):
        if _matches(selector, _pod_labels(deployment)):
            for container in pod_template(deployment.doc)["spec"]["containers"]:
                return process_kind([*container.get("command", []), *container.get("args", [])])
    return None


def _autoscaled(manifests: list[Manifest]) -> dict[str, str]:
    """Deployment name -> the object that scales it."""
    targets = {}
    for manifest in of_kind(manifests, "HorizontalPodAutoscaler"):
        ref = manifest.doc["spec"]["scaleTargetRef"]
        if ref.get("kind") == "Deployment":
            targets[ref["name"]] = manifest.ref
    for manifest in of_kind(manifests, "ScaledObject"):
        ref = manifest.doc["spec"]["scaleTargetRef"]
        if ref.get("kind", "Deployment") == "Deployment":
            targets[ref["name"]] = manifest.ref
    return targets


def kombu_queue_lists(queue: str, transport_options: dict) -> set[str]:
    """The Redis lists Celery's Redis transport uses for one queue: one per priority step,
    named by kombu's own rule."""
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    channel = SimpleNamespace(
        priority_steps=transport_options.get("priority_steps", PRIORITY_STEPS),
        sep=transport_options.get("sep", "\x06\x16"),
    )
    channel.priority = lambda n: Channel.priority(channel, n)
    return {Channel._q_for_pri(channel, queue, step) for step in channel.priority_steps}


def autoscaling_problems(manifests: list[Manifest], transport_options: dict) -> list[str]:
    """Autoscalers target existing Deployments that leave replicas to them; the GPU worker's
    ScaledObject counts every priority list of the gpu queue."""
    problems = []
    for name, scaler in _autoscaled(manifests).items():
        deployment = named(manifests, "Deployment", name)
        if deployment is None:
            problems.append(f"{scaler}: scales a Deployment {name} that does not exist")
        elif "replicas" in deployment.doc["spec"]:
            problems.append(
                f"{deployment.ref}: sets replicas although {scaler} scales it; every apply "
                "would reset the count"
            )
    auths = {m.doc["metadata"]["name"] for m in of_kind(manifests, "TriggerAuthentication")}
    gpu_lists = kombu_queue_lists("gpu", transport_options)
    scaled_objects = of_kind(manifests, "ScaledObject")
    if not scaled_objects:
        problems.append("no ScaledObject scales the GPU worker")
    for manifest in scaled_objects:
        spec = manifest.doc["spec"]
        target = named(manifests, "Deployment", spec["scaleTargetRef"]["name"])
        if target is not None and not any(
            "gpu" in (option(c.argv, "--queues") or "").split(",")
            for c in containers([target], init=False)
        ):
            problems.append(f"{manifest.ref}: scales {target.ref}, which is not the GPU worker")
        triggers = spec["triggers"]
        lists = [t["metadata"].get("listName") for t in triggers if t["type"] == "redis"]
        if set(lists) != gpu_lists or len(lists) != len(set(lists)):
            problems.append(
                f"{manifest.ref}: watches {sorted(filter(None, lists))}; the gpu queue's tasks "
                f"wait in {sorted(gpu_lists)}"
            )
        for trigger in triggers:
            ref = trigger.get("authenticationRef", {}).get("name")
            if ref and ref not in auths:
                problems.append(f"{manifest.ref}: trigger {trigger.get('name')} uses unknown {ref}")
        modifiers = spec.get("advanced", {}).get("scalingModifiers")
        if len(triggers) > 1:
            terms = re.split(r"\s*\+\s*", (modifiers or {}).get("formula", "").strip())
            names = [t.get("name") for t in triggers]
            if sorted(terms) != sorted(filter(None, names)) or None in names:
                problems.append(
                    f"{manifest.ref}: the formula must add every trigger once: "
                    f"{(modifiers or {}).get('formula')!r} vs {names}"
                )
    return problems


def kustomization_problems(directory: Path = K8S) -> list[str]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    listed = kustomization.get("resources", [])
    files = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
    problems = [f"{name} is listed twice" for name in set(listed) if listed.count(name) > 1]
    problems += [f"{name} is listed but missing" for name in sorted(set(listed) - files)]
    problems += [f"{name} is not listed" for name in sorted(files - set(listed))]
    return problems


def namespace_problems(manifests: list[Manifest]) -> list[str]:
    namespaces = {m.doc["metadata"]["name"] for m in of_kind(manifests, "Namespace")}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    problems = []
    if {kustomization.get("namespace")} != namespaces:
        problems.append(f"kustomization namespace is not the Namespace object {namespaces}")
    for manifest in manifests:
        if manifest.doc["kind"] == "Namespace":
            continue
        namespace = manifest.doc["metadata"].get("namespace")
        if namespace not in namespaces:
            problems.append(f"{manifest.ref}: namespace {namespace} is not {namespaces}")
    return problems


# --- Entry points -------------------------------------------------------------------------


@dataclass
class EntryPoints:
    management_commands: set[str]
    queues: set[str]
    celery_app: str


def _defines(module: str, attribute: str) -> bool:
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.is_file():
        return False
    for node in ast.parse(path.read_text()).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == attribute for t in targets):
            return True
    return False


def command_problems(argv: list[str], entry: EntryPoints, *, where: str) -> list[str]:
    """A Montage command names a real entry point: a manage.py command that exists, the
    WSGI and ASGI applications, the Celery app and its queues, a script in the tree."""
    problems = []
    for command in expanded_argvs(argv):
        program = Path(command[0]).name
        kind = process_kind(command)
        if kind in {"rest", "ws"}:
            target = next((a for a in command[1:] if re.fullmatch(r"[\w.]+:\w+", a)), "")
            module, _, attribute = target.partition(":")
            expected = "config.wsgi:application" if kind == "rest" else "config.asgi:application"
            if target != expected or not _defines(module, attribute):
                problems.append(f"{where}: {program} serves {target!r}, not {expected}")
            config = option(command, "--config", "-c")
            if config and not (ROOT / config).is_file():
                problems.append(f"{where}: no gunicorn configuration {config}")
        elif program == "celery":
            app = option(command, "--app", "-A")
            if app != entry.celery_app:
                problems.append(f"{where}: celery app {app!r}, not {entry.celery_app!r}")
            if kind == "worker":
                queues = set((option(command, "--queues", "-Q") or "").split(","))
                if not queues <= entry.queues:
                    problems.append(f"{where}: unknown queues {sorted(queues - entry.queues)}")
                if not option(command, "--hostname", "-n"):
                    problems.append(f"{where}: a worker needs --hostname (its probe pings it)")
            elif kind == "beat":
                if not option(command, "--schedule", "-s"):
                    problems.append(f"{where}: beat writes its schedule to the read-only /app")
            elif kind != "inspect":
                problems.append(f"{where}: unexpected celery command {command[1:]}")
        elif kind == "manage":
            name = command[2] if len(command) > 2 else ""
            if name not in entry.management_commands:
                problems.append(f"{where}: manage.py has no command {name!r}")
        elif program.startswith("python"):
            if command[1:2] == ["-c"]:
                try:
                    compile(command[2], where, "exec")
                except SyntaxError as error:
                    problems.append(f"{where}: python -c does not compile: {error}")
            elif not (ROOT / command[1]).is_file():
                problems.append(f"{where}: no script {command[1]}")
        elif program not in {"echo", "sleep", "true"}:
            problems.append(f"{where}: unknown program {program}")
    return problems


def manifest_command_problems(manifests: list[Manifest], entry: EntryPoints) -> list[str]:
    problems = []
    for container in containers(manifests):
        problems += command_problems(container.argv, entry, where=container.ref)
        for argv in exec_probe_argvs(container):
            problems += command_problems(argv, entry, where=f"{container.ref} probe")
    return problems


def queue_consumer_problems(worker_argvs: list[list[str]], queues: set[str]) -> list[str]:
    consumed = set()
    for argv in worker_argvs:
        consumed |= set((option(argv, "--queues", "-Q") or "").split(","))
    return [f"no worker consumes the {q} queue" for q in sorted(queues - consumed)]


# --- Compose ------------------------------------------------------------------------------


def compose_argv(command) -> list[str]:
    """The command as compose runs it when no variable is set (${NAME:-default} -> default)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command or [])
    return [INTERPOLATION.sub(lambda m: m.group(3), arg) for arg in argv]


def compose_healthcheck_argv(service: dict) -> list[str]:
    test = service.get("healthcheck", {}).get("test")
    if isinstance(test, str):
        return ["sh", "-c", test]
    if not test:
        return []
    if test[0] == "CMD":
        return list(test[1:])
    if test[0] == "CMD-SHELL":
        return ["sh", "-c", test[1]]
    return []


def montage_services(compose: dict) -> dict[str, dict]:
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).split(":")[0] in {"montage", "montage-cuda"}
    }


def interpolations(value: str) -> list[tuple[str, str, str]]:
    """(name, operator, default) for every ${...} in a compose value."""
    return [(m.group(1), m.group(2) or "", m.group(3) or "") for m in INTERPOLATION.finditer(value)]


def _secret_value_problem(name: str, value: str) -> str | None:
    """A credential in compose is an interpolation without a default (or with an empty one,
    which leaves the feature off); a URL may be literal only without a password."""
    for _, operator, default in interpolations(value):
        if operator in {"-", ":-"} and default:
            return f"{name} has a literal default {default!r}"
    masked = INTERPOLATION.sub("INTERPOLATED", value)
    if "://" in masked:
        password = urlsplit(masked).password
        if password not in (None, "INTERPOLATED"):
            return f"{name} carries a literal password"
        return None
    if masked not in {"INTERPOLATED", ""}:
        return f"{name} is a literal value"
    return None


def compose_problems(compose: dict, entry: EntryPoints, known: set[str], time_limit: int) -> list:
    problems = []
    services = compose.get("services", {})
    required = {
        *("web", "ws", "gpu", "cpu", "beat", "migrate", "bucket"),
        *("postgres", "redis", "minio"),
    }
    problems += [f"no {name} service" for name in sorted(required - services.keys())]
    montage = montage_services(compose)
    images = {
        "postgres": "pgvector/pgvector:pg16",
        "redis": "redis:",
        "minio": "minio/minio:",
    }
    for name, prefix in images.items():
        if not str(services.get(name, {}).get("image", "")).startswith(prefix):
            problems.append(f"{name}: image must be {prefix}...")
    declared_secrets = compose.get("secrets", {})
    for name, secret in declared_secrets.items():
        if "file" not in secret or not interpolations(secret["file"]):
            problems.append(f"secret {name}: must be a file whose location the operator sets")
    worker_argvs = []
    for name, service in montage.items():
        where = f"compose {name}"
        argv = compose_argv(service.get("command"))
        kind = process_kind(argv)
        problems += command_problems(argv, entry, where=where)
        health = compose_healthcheck_argv(service)
        if health:
            problems += command_problems(health, entry, where=f"{where} healthcheck")
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        for key, value in environment.items():
            if key not in known:
                problems.append(f"{where}: {key} is read by no setting")
            if key in SECRET_SETTINGS and (issue := _secret_value_problem(key, str(value))):
                problems.append(f"{where}: {issue}")
            if key in SECRET_FILE_SETTINGS:
                secret_name = str(value).removeprefix("/run/secrets/")
                if not str(value).startswith("/run/secrets/") or secret_name not in service.get(
                    "secrets", []
                ):
                    problems.append(f"{where}: {key}={value} is not a mounted compose secret")
                if secret_name not in declared_secrets:
                    problems.append(f"{where}: secret {secret_name} is not declared")
        missing = REQUIRED_IN_PRODUCTION - environment.keys()
        if missing:
            problems.append(f"{where}: missing {', '.join(sorted(missing))}")
        depends = service.get("depends_on", {})
        after_migrations = depends.get("migrate", {}).get("condition")
        waits = after_migrations == "service_completed_successfully"
        if name not in {"migrate", "bucket"} and not waits:
            problems.append(f"{where}: must start after migrate has completed")
        if service.get("read_only") is not True:
            problems.append(f"{where}: the root filesystem must be read-only")
        tmpfs = {entry_.split(":", 1)[0] for entry_ in service.get("tmpfs", [])}
        for path in sorted(WRITABLE_PATHS - tmpfs):
            problems.append(f"{where}: {path} needs a tmpfs")
        metrics_dir = str(environment.get("PROMETHEUS_MULTIPROC_DIR", "")).rstrip("/")
        if metrics_dir and metrics_dir not in tmpfs:
            problems.append(f"{where}: PROMETHEUS_MULTIPROC_DIR {metrics_dir} needs a tmpfs")
        if kind in {"rest", "ws"}:
            problems += _compose_health_problems(where, service, argv, environment)
        if kind == "worker":
            worker_argvs.append(argv)
            grace = _duration_seconds(service.get("stop_grace_period", "10s"))
            if grace <= time_limit:
                problems.append(
                    f"{where}: stop_grace_period {grace} s must exceed the task limit {time_limit}"
                )
        if kind == "beat":
            replicas = service.get("deploy", {}).get("replicas", 1)
            if replicas != 1:
                problems.append(f"{where}: exactly one scheduler, not {replicas}")
        one_shot = kind == "manage" or name in {"migrate", "bucket"}
        if one_shot and service.get("restart") != "no":
            problems.append(f"{where}: a one-shot must not be restarted")
    problems += queue_consumer_problems(worker_argvs, entry.queues)
    migrate = services.get("migrate", {})
    if migrate.get("depends_on", {}).get("postgres", {}).get("condition") != "service_healthy":
        problems.append("compose migrate: must wait for a healthy postgres")
    gpu = services.get("gpu", {})
    if gpu.get("build", {}).get("args", {}).get("VARIANT") != "cuda":
        problems.append("compose gpu: must be built with VARIANT=cuda")
    devices = gpu.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    if not any("gpu" in device.get("capabilities", []) for device in devices):
        problems.append("compose gpu: needs a GPU device reservation")
    gpu_argv = compose_argv(gpu.get("command"))
    gpu_queues = option(gpu_argv, "--queues", "-Q")
    if gpu_queues != "gpu" or option(gpu_argv, "--concurrency", "-c") != "1":
        problems.append("compose gpu: consumes the gpu queue with concurrency 1")
    for name in ("postgres", "minio"):
        for key, value in services.get(name, {}).get("environment", {}).items():
            if "PASSWORD" in key and (issue := _secret_value_problem(key, str(value))):
                problems.append(f"compose {name}: {issue}")
    return problems


def _compose_health_problems(where: str, service: dict, argv: list[str], env: dict) -> list[str]:
    health = compose_healthcheck_argv(service)
    text = " ".join(health)
    port = option(argv, "--bind", "-b") or option(argv, "--port")
    port = (port or "").rsplit(":", 1)[-1]
    urls = re.findall(r"https?://[^'\"\s]+", text)
    if not urls:
        return [f"{where}: needs a health check on /readyz or /healthz"]
    problems = []
    hosts = set(INTERPOLATION.sub(lambda m: m.group(3), env.get("ALLOWED_HOSTS", "")).split(","))
    for url in urls:
        parts = urlsplit(url)
        if parts.path not in {"/readyz", "/healthz"}:
            problems.append(f"{where}: health check asks {parts.path}")
        if str(parts.port) != port:
            problems.append(f"{where}: health check asks port {parts.port}, served {port}")
        if parts.hostname not in hosts:
            problems.append(f"{where}: health check host {parts.hostname} not in ALLOWED_HOSTS")
    return problems


def _duration_seconds(value) -> int:
    if isinstance(value, int):
        return value
    total = 0
    for number, unit in re.findall(r"(\d+)(h|ms|m|s|us)", str(value)):
        total += int(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0, "us": 0}[unit]
    return total


def compose_variables(path: Path = COMPOSE) -> set[str]:
    return {name for name, _, _ in interpolations(path.read_text())}


# --- Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, arguments = current.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    return instructions


def dockerfile_problems(text: str) -> list[str]:
    problems = []
    instructions = dockerfile_instructions(text)
    first_from = next(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    global_args = dict(
        [*a.split("=", 1), ""][:2] for k, a in instructions[:first_from] if k == "ARG"
    )
    if global_args.get("VARIANT") != "cpu":
        problems.append("ARG VARIANT must default to cpu")
    if global_args.get("PYTHON_IMAGE") != "python:3.11-slim-bookworm":
        problems.append("the CPU variant's base must be python:3.11-slim-bookworm")
    if not global_args.get("CUDA_IMAGE", "").startswith("nvidia/cuda:"):
        problems.append("the CUDA variant's base must be an nvidia/cuda image")
    stages = [a for k, a in instructions if k == "FROM"]
    if not any(re.search(r"\$\{?VARIANT\}?", stage) for stage in stages):
        problems.append("no stage is chosen by VARIANT")
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    final = instructions[last_from:]
    users = [a for k, a in final if k == "USER"]
    if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
        problems.append("the final stage must run as a numeric non-root USER")
    if not any(k == "RUN" and "manage.py collectstatic" in a for k, a in instructions):
        problems.append("static files must be collected at build time")
    if not any(k == "RUN" and "deploy/requirements.py" in a for k, a in instructions):
        problems.append("dependencies must come from pyproject.toml (deploy/requirements.py)")
    secret_names = SECRET_SETTINGS | SECRET_FILE_SETTINGS | {"PASSWORD", "TOKEN"}
    for keyword, arguments in instructions:
        if keyword in {"ENV", "ARG"}:
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", arguments) or [arguments]:
                if any(secret in name.upper() for secret in secret_names):
                    problems.append(f"{keyword} {name}: no secret is set at build time")
    command = [json.loads(a) for k, a in final if k == "CMD"]
    if not command or "config.wsgi:application" not in command[-1]:
        problems.append("the default command must serve config.wsgi:application")
    elif "config/gunicorn.py" in command[-1] and not (ROOT / "config" / "gunicorn.py").is_file():
        problems.append("the default command names a missing config/gunicorn.py")
    entrypoint = [json.loads(a) for k, a in final if k == "ENTRYPOINT"]
    if not entrypoint or Path(entrypoint[-1][0]).name != "tini":
        problems.append("tini must be PID 1 (signals to Celery, reaped children)")
    return problems


def pyproject_torch_pin() -> str:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d for d in dependencies if re.match(r"^torch\s*==", d))
