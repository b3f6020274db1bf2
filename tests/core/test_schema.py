"""The OpenAPI document is valid and its docs page works offline (assets served locally)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from django.test import Client

from tests.fixtures import ROOT


@pytest.mark.django_db
def test_schema_is_an_openapi_3_document():
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.oai.openapi+json"
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Montage API"
    assert "/api/v1/auth/register" in schema["paths"]
    assert {"apiKey", "jwt"} <= set(schema["components"]["securitySchemes"])


@pytest.mark.django_db
def test_schema_default_format_is_yaml_of_the_same_document():
    client = Client()
    as_yaml = client.get("/api/schema/")
    assert as_yaml.status_code == 200
    assert as_yaml["Content-Type"].startswith("application/vnd.oai.openapi")
    as_json = client.get("/api/schema/", {"format": "json"})
    assert yaml.safe_load(as_yaml.content) == json.loads(as_json.content)


@pytest.mark.django_db
@pytest.mark.urls("tests.core.urls_for_tests")
def test_paginated_lists_document_the_list_envelope_and_cursor_parameters():
    schema = json.loads(Client().get("/api/schema/", {"format": "json"}).content)
    operation = schema["paths"]["/api/v1/test/newest"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"cursor", "limit"}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    envelope = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert envelope["required"] == ["object", "data", "has_more", "next_cursor"]
    object_schema = envelope["properties"]["object"]
    if "$ref" in object_schema:  # spectacular lifts enums into components
        object_schema = schema["components"]["schemas"][object_schema["$ref"].rsplit("/", 1)[1]]
    assert object_schema["enum"] == ["list"]
    assert envelope["properties"]["next_cursor"] == {"type": "string", "nullable": True}
    assert envelope["properties"]["data"]["type"] == "array"


def test_spectacular_validates_the_schema_without_warnings(tmp_path):
    env = dict(os.environ, MONTAGE_ENV="test", DJANGO_SETTINGS_MODULE="config.settings")
    out = tmp_path / "openapi.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Schema generation summary" not in result.stderr, result.stderr
    assert yaml.safe_load(out.read_text())["openapi"].startswith("3.")


@pytest.mark.django_db
def test_docs_page_uses_only_locally_served_swagger_ui_assets():
    client = Client()
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()

    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert urls, html
    # No CDN: nothing absolute or protocol-relative, nothing outside the static root.
    assert [u for u in urls if re.match(r"^(?:[a-z]+:)?//", u, re.I)] == []
    assert all(u.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/") for u in urls)
    for host in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs", "googleapis"):
        assert host not in html
    assert {u.rsplit("/", 1)[1] for u in urls} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    }
    assert 'url: "/api/schema/"' in html

    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        body = b"".join(asset.streaming_content) if asset.streaming else asset.content
        assert len(body) > 100, url
