"""Fixtures for operations tests: a real S3-compatible server on the loopback interface.

``s3_server`` starts moto's S3 server in this process (a thread serving HTTP on a free port)
with one empty bucket, for the whole session. ``s3_storage`` switches this process's media
storage to that bucket for one test, with the STORAGES value config/settings.py derives from
``s3_server.env()``; processes a test starts (workers, the ASGI server) get the same bucket by
passing ``extra_env=s3_server.env()``.

moto checks that an object is private (an unsigned request for it is refused), but it does
not check presigned signatures or their expiry: :func:`presigned` verifies both the way S3
does (AWS Signature Version 4, query-string form), against the server's secret key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import boto3
import pytest
from botocore.config import Config

from tests.fixtures import ROOT, process_env

BUCKET = "montage-media-test"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str
    region: str = REGION
    access_key_id: str = "montage-test-key"
    secret_access_key: str = "montage-test-secret"

    def env(self) -> dict[str, str]:
        """The environment that points a Montage process at this server's bucket."""
        return {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": self.bucket,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_REGION": self.region,
            "S3_ACCESS_KEY_ID": self.access_key_id,
            "S3_SECRET_ACCESS_KEY": self.secret_access_key,
            "S3_ADDRESSING_STYLE": "path",
        }

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix``, sorted, read from the server itself."""
        pages = self.client().get_paginator("list_objects_v2")
        return sorted(
            item["Key"]
            for page in pages.paginate(Bucket=self.bucket, Prefix=prefix)
            for item in page.get("Contents", ())
        )

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def object_url(self, key: str) -> str:
        """The object's plain (unsigned) address on this server."""
        return f"{self.endpoint_url}/{self.bucket}/{quote(key)}"


@pytest.fixture(scope="session")
def s3_server():
    from moto.server import ThreadedMotoServer

    # One line per request otherwise; failures still show moto's own errors.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    s3 = S3Server(endpoint_url=f"http://{host}:{port}", bucket=BUCKET)
    s3.client().create_bucket(Bucket=s3.bucket)
    yield s3
    server.stop()


def settings_in_fresh_process(changes: dict[str, str | None], expression: str) -> subprocess.Popen:
    """Starts an interpreter that loads Montage's settings with this process's environment
    plus ``changes`` (None unsets a variable) and prints ``expression`` (over ``s``, the
    settings) as JSON. Settings are read once per process, so each environment needs its own."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({expression}))"
    )
    env = process_env()
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="session")
def s3_storages_setting(s3_server) -> dict:
    """STORAGES exactly as config/settings.py builds it from ``s3_server.env()``."""
    proc = settings_in_fresh_process(s3_server.env(), "s.STORAGES")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return json.loads(out)


@pytest.fixture
def s3_storage(s3_storages_setting, settings):
    """This process's media storage is the S3 bucket for the test. Assigning STORAGES sends
    ``setting_changed``, on which Django drops its cached backends and ``default_storage``;
    pytest-django restores the setting (and so the filesystem storage) afterwards."""
    from django.core.files.storage import default_storage

    from core.storage import S3MediaStorage

    settings.STORAGES = s3_storages_setting
    assert isinstance(default_storage, S3MediaStorage)
    return default_storage


# --- Presigned URLs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Presigned:
    key: str
    signed_at: dt.datetime
    expires_in: int

    @property
    def expires_at(self) -> dt.datetime:
        return self.signed_at + dt.timedelta(seconds=self.expires_in)


class BadSignature(AssertionError):
    pass


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def presigned(url: str, server: S3Server) -> Presigned:
    """Checks ``url`` as S3 checks a presigned GET (SigV4 in the query string), for an object
    of ``server``'s bucket signed with its key: raises :class:`BadSignature` unless the
    signature covers the path, the host and every parameter (the lifetime included)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    params = dict(query)
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or "X-Amz-Signature" not in params:
        raise BadSignature(f"not a SigV4 presigned URL: {url}")
    if f"{parts.scheme}://{parts.netloc}" != server.endpoint_url:
        raise BadSignature(f"not on the S3 server: {url}")
    day = params["X-Amz-Date"][:8]
    scope = f"{day}/{server.region}/s3/aws4_request"
    if params["X-Amz-Credential"] != f"{server.access_key_id}/{scope}":
        raise BadSignature(f"signed for another key or scope: {params['X-Amz-Credential']}")
    if params.get("X-Amz-SignedHeaders") != "host":
        raise BadSignature("signs headers a browser would not send")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(query)
        if k != "X-Amz-Signature"
    )
    canonical = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = _hmac(f"AWS4{server.secret_access_key}".encode(), day)
    for part in (server.region, "s3", "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        raise BadSignature(f"signature does not match: {url}")
    prefix = f"/{server.bucket}/"
    if not parts.path.startswith(prefix):
        raise BadSignature(f"not an object of {server.bucket}: {parts.path}")
    signed_at = dt.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return Presigned(
        key=unquote(parts.path[len(prefix) :]),
        signed_at=signed_at,
        expires_in=int(params["X-Amz-Expires"]),
    )
