"""Authentication for REST and WebSockets: API keys and JWTs, both as ``Bearer`` tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from django.utils import timezone
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication as _SimpleJWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from accounts.models import ApiKey, User
from core.errors import AuthenticationRequired

API_KEY_PREFIX = "mk_"
LAST_USED_RESOLUTION = dt.timedelta(minutes=5)
# RFC 6750: a 401 for a presented but unusable token says so in WWW-Authenticate, so clients
# know to obtain a new token rather than retry.
INVALID_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'  # noqa: S105 - a header value


def _rejected(message: str, code: str) -> AuthenticationRequired:
    return AuthenticationRequired(
        message, code=code, headers={"WWW-Authenticate": INVALID_TOKEN_CHALLENGE}
    )


def hash_api_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def bearer_token(header: str | bytes | None) -> str | None:
    if not header:
        return None
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def user_for_api_key(raw: str) -> tuple[User, ApiKey]:
    """The user a raw API key belongs to; AuthenticationRequired when unknown or revoked."""
    invalid = _rejected("Incorrect API key provided.", "invalid_api_key")
    body = raw[len(API_KEY_PREFIX) :]
    prefix, sep, _secret = body.partition("_")
    if not sep or not prefix:
        raise invalid
    key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.key_hash, hash_api_key(raw)):
        raise invalid
    if key.revoked_at is not None:
        raise _rejected("This API key has been revoked.", "api_key_revoked")
    if not key.user.is_active:
        raise _rejected("This account is disabled.", "account_disabled")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # Coarse on purpose: a write per request would cost more than the request itself.
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.user, key


def user_for_jwt(raw: str) -> User:
    auth = JWTAuthentication()
    try:
        user = auth.get_user(auth.get_validated_token(raw))
    except (InvalidToken, TokenError, AuthenticationFailed) as exc:
        raise _rejected("The access token is invalid or expired.", "invalid_token") from exc
    if not user.is_active:
        raise _rejected("This account is disabled.", "account_disabled")
    return user


def user_for_token(raw: str) -> User:
    """One entry point for any bearer token (REST and WebSocket share it)."""
    if raw.startswith(API_KEY_PREFIX):
        return user_for_api_key(raw)[0]
    return user_for_jwt(raw)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer mk_...`` — what the ``openai`` SDK sends as its api_key."""

    def authenticate(self, request):
        token = bearer_token(authentication.get_authorization_header(request))
        if token is None or not token.startswith(API_KEY_PREFIX):
            return None
        user, key = user_for_api_key(token)
        return user, key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class JWTAuthentication(_SimpleJWTAuthentication):
    """Short-lived access tokens from /api/v1/auth/token, for mobile clients."""

    def authenticate(self, request):
        token = bearer_token(authentication.get_authorization_header(request))
        if token is None or token.startswith(API_KEY_PREFIX):
            return None
        return user_for_jwt(token), None

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
