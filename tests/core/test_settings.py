"""Production mode refuses to start with development secrets or missing infrastructure.

Each case starts a fresh interpreter (settings are read once per process), all of them at
once so the module stays fast.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import DEV_SECRET_KEY
from generation.provenance.keys import LEAF_CERT, LEAF_KEY, dev_credentials
from tests.fixtures import ROOT

SETUP = "import django; django.setup()"
REPORT = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'DEBUG': s.DEBUG, 'ALLOWED_HOSTS': s.ALLOWED_HOSTS, "
    "'SESSION_COOKIE_SECURE': s.SESSION_COOKIE_SECURE, 'CSRF_COOKIE_SECURE': s.CSRF_COOKIE_SECURE, "
    "'SECURE_PROXY_SSL_HEADER': s.SECURE_PROXY_SSL_HEADER, 'REDIS_URL': s.REDIS_URL, "
    "'DB_ENGINE': s.DATABASES['default']['ENGINE'], 'SECRET_KEY_LEN': len(s.SECRET_KEY)}))"
)
GOOD_KEY = secrets.token_urlsafe(64)
UNSET = None

NEEDS_KEY = "MONTAGE_ENV=production needs SECRET_KEY set to a random value of 50+ characters"
NEEDS_HOSTS = "MONTAGE_ENV=production needs ALLOWED_HOSTS set to real hosts"
NEEDS_URLS = "MONTAGE_ENV=production needs DATABASE_URL and REDIS_URL"
NEEDS_SIGNING = "MONTAGE_ENV=production needs GENERATION_SIGNING_CERT and GENERATION_SIGNING_KEY"

REFUSALS = {
    "no SECRET_KEY": ({"SECRET_KEY": UNSET}, NEEDS_KEY),
    "the development SECRET_KEY": ({"SECRET_KEY": DEV_SECRET_KEY}, NEEDS_KEY),
    "a short SECRET_KEY": ({"SECRET_KEY": GOOD_KEY[:49]}, NEEDS_KEY),
    "DEBUG": ({"DEBUG": "true"}, "MONTAGE_ENV=production refuses DEBUG=true"),
    "no ALLOWED_HOSTS": ({"ALLOWED_HOSTS": UNSET}, NEEDS_HOSTS),
    "empty ALLOWED_HOSTS": ({"ALLOWED_HOSTS": " , "}, NEEDS_HOSTS),
    "wildcard ALLOWED_HOSTS": ({"ALLOWED_HOSTS": "api.example.com,*"}, NEEDS_HOSTS),
    "no DATABASE_URL": ({"DATABASE_URL": UNSET}, NEEDS_URLS),
    "no REDIS_URL": ({"REDIS_URL": UNSET}, NEEDS_URLS),
    "no signing certificate": ({"GENERATION_SIGNING_CERT": UNSET}, NEEDS_SIGNING),
    "a missing signing key file": (
        {"GENERATION_SIGNING_KEY": "/nonexistent/leaf.key"},
        "GENERATION_SIGNING_KEY names a file that does not exist",
    ),
    "an unknown MONTAGE_ENV": ({"MONTAGE_ENV": "prod"}, "MONTAGE_ENV must be development"),
}


def production_env(tmp_dir: str, **changes: str | None) -> dict[str, str]:
    """A complete, valid production environment, then ``changes`` (None unsets a variable)."""
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        MONTAGE_ENV="production",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="api.example.com",
        MONTAGE_DATA_DIR=tmp_dir,
        PYTHONDONTWRITEBYTECODE="1",
        GENERATION_SIGNING_CERT=str(Path(tmp_dir) / "signing" / LEAF_CERT),
        GENERATION_SIGNING_KEY=str(Path(tmp_dir) / "signing" / LEAF_KEY),
    )
    assert env.get("DATABASE_URL") and env.get("REDIS_URL"), "the suite runs with both set"
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, subprocess.CompletedProcess]:
    tmp_dir = str(tmp_path_factory.mktemp("production-data"))
    # A real certificate and key to point production at (the development chain's leaf).
    dev_credentials(Path(tmp_dir) / "signing")
    cases = {name: (SETUP, production_env(tmp_dir, **env)) for name, (env, _) in REFUSALS.items()}
    cases["valid"] = (REPORT, production_env(tmp_dir))
    running = {
        name: subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (code, env) in cases.items()
    }
    results = {}
    for name, proc in running.items():
        stdout, stderr = proc.communicate(timeout=120)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return results


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_production_refuses_to_start(outcomes, case):
    result = outcomes[case]
    _, message = REFUSALS[case]
    assert result.returncode != 0
    assert f"django.core.exceptions.ImproperlyConfigured: {message}" in result.stderr, (
        result.stderr[-2000:]
    )


def test_production_starts_with_proper_values(outcomes):
    result = outcomes["valid"]
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "DEBUG": False,
        "ALLOWED_HOSTS": ["api.example.com"],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "DB_ENGINE": "django.db.backends.postgresql",
        "SECRET_KEY_LEN": len(GOOD_KEY),
    }
