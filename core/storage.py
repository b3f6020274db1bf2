"""Media storage: the S3-compatible backend, and links that reach stored objects directly.

With the filesystem backend, media reaches clients only through Montage's own endpoints
(signed tokens, bytes streamed by Django). With an object store the bytes never pass through
Montage: a client gets a presigned URL that the store itself checks and lets expire, or, for
media published to everyone, a URL on the CDN host in front of the bucket.
"""

from __future__ import annotations

from django.utils.encoding import filepath_to_uri
from storages.backends.s3 import S3Storage
from storages.utils import clean_name


class S3MediaStorage(S3Storage):
    """``S3Storage`` with one more option, ``public_domain``: a CDN host for published media.

    It is kept apart from django-storages' own ``custom_domain`` on purpose: that one makes
    ``url()`` return unsigned links for every object, drafts included.
    """

    def get_default_settings(self) -> dict:
        return {**super().get_default_settings(), "public_domain": None}


def _key(storage: S3Storage, name: str) -> str:
    return storage._normalize_name(clean_name(name))


def media_url(storage, name: str, *, expires: int, public: bool = False) -> str | None:
    """A URL that fetches the object ``name`` straight from ``storage``, or None when the
    storage is not an object store (only Montage can serve its files).

    ``public`` says that anyone may see the object: it then gets a URL on the storage's CDN
    host when it has one. Otherwise, and whenever there is no CDN host, the URL is presigned
    and expires ``expires`` seconds from now.
    """
    # isinstance sees through default_storage's lazy wrapper to the configured backend.
    if not isinstance(storage, S3Storage):
        return None
    key = _key(storage, name)
    domain = getattr(storage, "public_domain", None)
    if public and domain:
        return f"https://{domain}/{filepath_to_uri(key)}"
    # Safety: drafts only ever get presigned, expiring links. The client presigns directly
    # rather than through url(), which custom_domain or querystring_auth=False would turn
    # into a permanent unsigned link.
    return storage.connection.meta.client.generate_presigned_url(
        "get_object",
        Params={"Bucket": storage.bucket_name, "Key": key},
        ExpiresIn=expires,
    )
