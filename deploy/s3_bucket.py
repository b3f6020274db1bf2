"""Creates Montage's media bucket if it does not exist (the `bucket` one-shot in compose).

    python deploy/s3_bucket.py [--wait SECONDS]

Reads the variables the storage settings read: S3_BUCKET, S3_ENDPOINT_URL, S3_REGION,
S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY. A server that does not answer yet (the object store
container is still starting) is asked again until --wait seconds have passed; a refusal
(wrong credentials, a bucket owned by someone else) fails at once. Exit status 0 when the
bucket exists afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

UNREACHABLE = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)
MISSING = {"404", "NoSuchBucket", "NotFound"}


def client_from_env(environ: dict[str, str]):
    endpoint = environ.get("S3_ENDPOINT_URL", "").strip() or None
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=environ.get("S3_REGION", "").strip() or None,
        aws_access_key_id=environ.get("S3_ACCESS_KEY_ID", "").strip() or None,
        aws_secret_access_key=environ.get("S3_SECRET_ACCESS_KEY", "").strip() or None,
        config=Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"max_attempts": 1},
            # MinIO and most S3-compatible servers address buckets by path, not by host name.
            s3={"addressing_style": "path" if endpoint else "auto"},
        ),
    )


def ensure_bucket(client, bucket: str, region: str | None) -> bool:
    """Returns True if the bucket was created, False if it was already there."""
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in MISSING:
            raise
    options = {}
    if region and region != "us-east-1":
        options["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        client.create_bucket(Bucket=bucket, **options)
    except ClientError as exc:
        # Another run created it in between.
        if exc.response.get("Error", {}).get("Code") == "BucketAlreadyOwnedByYou":
            return False
        raise
    return True


def main(argv: list[str], environ: dict[str, str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the server")
    args = parser.parse_args(argv)
    bucket = environ.get("S3_BUCKET", "").strip()
    if not bucket:
        print("s3_bucket: S3_BUCKET is not set", file=sys.stderr)
        return 2
    client = client_from_env(environ)
    region = environ.get("S3_REGION", "").strip() or None
    deadline = time.monotonic() + args.wait
    while True:
        try:
            created = ensure_bucket(client, bucket, region)
        except UNREACHABLE as exc:
            if time.monotonic() >= deadline:
                print(f"s3_bucket: no answer within {args.wait:g} s: {exc}", file=sys.stderr)
                return 1
            time.sleep(1)
            continue
        except ClientError as exc:
            error = exc.response.get("Error", {})
            print(
                f"s3_bucket: {bucket}: {error.get('Code')} {error.get('Message', '')}".rstrip(),
                file=sys.stderr,
            )
            return 1
        print(f"s3_bucket: {bucket} {'created' if created else 'exists'}")
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], dict(os.environ)))
