"""Settings for CLMS Updates, every knob an environment variable.

One file for both roles. Each variable has a safe default for the embedded demo
(SQLite under ``var/``, Redis on loopback); production sets them in an env file.
Every variable is listed in ``.env.example`` and ``docs/configuration.md``.
A bad value stops start-up with ``ImproperlyConfigured`` naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# The demo secret: fine for `make run`, refused when DEBUG is off.
DEMO_SECRET_KEY = "clms-updates-demo-secret-key-do-not-use-in-production-0123456789"  # noqa: S105


def envstr(name: str, default: str) -> str:
    """Read a string, also from ``NAME_FILE`` (a path holding the value)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as e:
            raise ImproperlyConfigured(
                f"{name}_FILE points at {file_name!r}, which cannot be read: {e}"
            ) from e
    return os.environ.get(name, default)


def envbool(name: str, default: str) -> bool:
    """Read a boolean: true/false, yes/no, on/off, 1/0."""
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use true or false.")


def envint(name: str, default: str, *, minimum: int | None = None) -> int:
    """Read an integer, optionally with a lower bound."""
    value = os.environ.get(name, default).strip()
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum {minimum}.")
    return number


def envlist(name: str, default: str) -> list[str]:
    """Read a comma-separated list; blanks are dropped."""
    return [
        item.strip()
        for item in os.environ.get(name, default).split(",")
        if item.strip()
    ]


def envchoice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """Read one value out of a fixed set."""
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not allowed; use one of: {', '.join(choices)}."
        )
    return value


# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------

VAR_DIR = Path(os.environ.get("CLMS_VAR_DIR", str(BASE_DIR / "var")))

# Which half of the product this process serves: the school agent, the vendor
# server, or both (the demo and the tests).
CLMS_ROLE = envchoice("CLMS_ROLE", "both", ("school", "vendor", "both"))
SCHOOL_ROLE_ENABLED = CLMS_ROLE in ("school", "both")
VENDOR_ROLE_ENABLED = CLMS_ROLE in ("vendor", "both")

DEBUG = envbool("DEBUG", "true")
SECRET_KEY = envstr("SECRET_KEY", DEMO_SECRET_KEY)
if not DEBUG and SECRET_KEY == DEMO_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is the demo key while DEBUG=false. Set SECRET_KEY (or "
        "SECRET_KEY_FILE) to a long random value, for example the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long.")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "channels",
    "axes",
    "clms_updates.apps.CoreConfig",
    "backups.apps.BackupsConfig",
    "updates.apps.UpdatesConfig",
    "vendor_server.apps.VendorServerConfig",
]

MIDDLEWARE = [
    "clms_updates.logcontext.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ from the ASGI server itself (collected files in
    # production, the source folders while DEBUG is on).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After auth: blocks pages and API once a critical deadline has passed.
    "updates.middleware.EnforcementMiddleware",
    # Last: answers a locked-out sign-in (django-axes, see clms_updates.guessing).
    "axes.middleware.AxesMiddleware",
]

# Guessing passwords and tokens (django-axes; clms_updates.guessing): after
# LOGIN_FAILURE_LIMIT wrong tries of one username (or one kind of token) from
# one address, that pair is locked out for LOGIN_LOCKOUT_MINUTES.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", "10", minimum=1)
LOGIN_LOCKOUT_MINUTES = envint("LOGIN_LOCKOUT_MINUTES", "15", minimum=1)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "clms_updates.guessing.lockout_response"
AXES_VERBOSE = False

ROOT_URLCONF = "clms_updates.urls"
ASGI_APPLICATION = "clms_updates.asgi.application"
WSGI_APPLICATION = "clms_updates.wsgi.application"

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
                "clms_updates.context_processors.role",
                "updates.context_processors.enforcement",
            ],
        },
    },
]

# The agent's own database. SQLite for the demo; PostgreSQL in production.
DATABASE_URL = os.environ.get(
    "DATABASE_URL", f"sqlite:///{VAR_DIR / 'clms_updates.sqlite3'}"
)
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
except Exception as e:  # dj_database_url raises plain ValueError/KeyError
    raise ImproperlyConfigured(
        f"DATABASE_URL={DATABASE_URL!r} is not valid: {e}"
    ) from e
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", str(VAR_DIR / "static")))
# Serve from the source folders too, so nothing breaks before `collectstatic`.
WHITENOISE_USE_FINDERS = True
# Before `collectstatic` STATIC_ROOT does not exist yet; the finders serve then.
warnings.filterwarnings("ignore", message="No directory at: ")
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# ---------------------------------------------------------------------------
# Redis, Celery, Channels, cache
# ---------------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A task is acknowledged after it ran, so a killed worker's task is redelivered.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The worker logs through LOGGING (plain or JSON, with the run's context).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", "false")

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "clms_updates.channel_layer.ChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}

# The cache holds API throttling counters and batched check-ins. `locmem://`
# keeps it in-process (one process only; for tests run without Redis).
CACHE_URL = os.environ.get("CACHE_URL", REDIS_URL)
if CACHE_URL.startswith("locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
        }
    }

# ---------------------------------------------------------------------------
# REST API
# ---------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "clms_updates.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["clms_updates.permissions.IsSchoolViewer"],
    "DEFAULT_THROTTLE_CLASSES": [
        "clms_updates.throttling.AnonRateThrottle",
        "clms_updates.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "30/minute"),
        "user": os.environ.get("API_THROTTLE_USER", "300/minute"),
        "vendor_school": os.environ.get("VENDOR_API_THROTTLE", "120/minute"),
    },
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "clms_updates.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "clms_updates.api.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "CLMS Updates API",
    "DESCRIPTION": "School agent and vendor server APIs of CLMS Updates.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clms_updates.api_schema.add_error_responses",
    ],
}

# ---------------------------------------------------------------------------
# Health, email, logging
# ---------------------------------------------------------------------------

# Components whose failure turns /healthz into a 503. Docker and the compose
# CLI matter only to the school agent, which applies releases with them.
HEALTHZ_REQUIRED = envlist(
    "HEALTHZ_REQUIRED",
    "database,redis,celery,docker,compose"
    if SCHOOL_ROLE_ENABLED
    else "database,redis,celery",
)
HEALTHZ_TIMEOUT = envint("HEALTHZ_TIMEOUT", "2", minimum=1)

DOCKER_HOST = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")

# GET /metrics (Prometheus): for a scraper with the token, or one calling from
# these networks (CIDR; loopback by default).
METRICS_TOKEN = envstr("METRICS_TOKEN", "")
try:
    METRICS_ALLOWED_NETWORKS = [
        ipaddress.ip_network(n, strict=False)
        for n in envlist("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
    ]
except ValueError as e:
    raise ImproperlyConfigured(
        f"METRICS_ALLOWED_NETWORKS: {e}; give networks like 10.0.0.0/8,127.0.0.1/32"
    ) from None
METRICS_COLLECTORS = [
    *(
        ["updates.metrics.SchoolCollector", "backups.metrics.BackupCollector"]
        if SCHOOL_ROLE_ENABLED
        else []
    ),
    *(["vendor_server.metrics.VendorCollector"] if VENDOR_ROLE_ENABLED else []),
]


EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", "25", minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "false")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "clms-updates@localhost")
# Who hears about new releases, failures and deadlines.
ADMIN_EMAILS = envlist("ADMIN_EMAILS", "")

LOG_LEVEL = envchoice(
    "LOG_LEVEL", "info", ("debug", "info", "warning", "error")
).upper()
# plain: one line a record; json: one JSON object a record, for a log
# collector. Both carry what the line is about (run_id, release, step, school:
# clms_updates.logcontext).
LOG_FORMAT = envchoice("LOG_FORMAT", "plain", ("plain", "json"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "clms_updates.logcontext.ContextFilter"}},
    "formatters": {
        "plain": {
            "format": "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"
        },
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(run_id)s "
            "%(release)s %(step)s %(school)s",
            "rename_fields": {"asctime": "time", "levelname": "level"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Every failed sign-in is counted (and a lock-out audited), not logged.
        "axes": {"level": "WARNING"},
    },
}

# ---------------------------------------------------------------------------
# Production hardening (DEBUG=false): what `manage.py check --deploy` wants.
# ---------------------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "true")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", "31536000", minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"
    # /healthz is probed over plain HTTP inside the compose network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

# ---------------------------------------------------------------------------
# Vendor server (app vendor_server)
# ---------------------------------------------------------------------------
# (section owned by vendor_server)

# The vendor's GnuPG home holding the signing key (0700, outside the web root).
VENDOR_GNUPG_HOME = Path(
    os.environ.get("VENDOR_GNUPG_HOME", str(VAR_DIR / "vendor-gnupg"))
)
# Fingerprint of the signing key; empty means "the only secret key in the home".
VENDOR_SIGNING_KEY = os.environ.get("VENDOR_SIGNING_KEY", "").replace(" ", "").upper()
VENDOR_KEY_PASSPHRASE = envstr("VENDOR_KEY_PASSPHRASE", "")
# The product name written into every manifest and index.
VENDOR_PRODUCT = os.environ.get("VENDOR_PRODUCT", "clms")
# The agent's own product: its releases have their own index and versions.
VENDOR_AGENT_PRODUCT = os.environ.get("VENDOR_AGENT_PRODUCT", "clms-updates")
# How long a signed index stays valid (agents refuse it after) and a manifest.
VENDOR_INDEX_TTL_DAYS = envint("VENDOR_INDEX_TTL_DAYS", "7", minimum=1)
VENDOR_MANIFEST_TTL_DAYS = envint("VENDOR_MANIFEST_TTL_DAYS", "365", minimum=1)
# Beat re-signs the index when less than this many hours of validity remain.
VENDOR_INDEX_RESIGN_BEFORE_HOURS = envint(
    "VENDOR_INDEX_RESIGN_BEFORE_HOURS", "120", minimum=1
)
# Registry HTTP API v2 credentials; hosts reached over plain HTTP (loopback always).
VENDOR_REGISTRY_USERNAME = os.environ.get("VENDOR_REGISTRY_USERNAME", "")
VENDOR_REGISTRY_PASSWORD = envstr("VENDOR_REGISTRY_PASSWORD", "")
VENDOR_REGISTRY_INSECURE_HOSTS = envlist("VENDOR_REGISTRY_INSECURE_HOSTS", "")
VENDOR_REGISTRY_TIMEOUT = envint("VENDOR_REGISTRY_TIMEOUT", "10", minimum=1)
# Skip the registry lookup on publish (only for an offline demo without a registry).
VENDOR_REGISTRY_CHECK = envbool("VENDOR_REGISTRY_CHECK", "true")
# Where release bundles are stored, and the largest upload accepted (MiB).
VENDOR_BUNDLE_DIR = Path(
    os.environ.get("VENDOR_BUNDLE_DIR", str(VAR_DIR / "vendor-bundles"))
)
VENDOR_MAX_BUNDLE_MB = envint("VENDOR_MAX_BUNDLE_MB", "2048", minimum=1)
# How often beat re-signs the index when it is close to expiring, and writes the
# buffered check-ins to the database (minutes).
VENDOR_INDEX_REFRESH_MINUTES = envint("VENDOR_INDEX_REFRESH_MINUTES", "60", minimum=1)
VENDOR_CHECKIN_FLUSH_MINUTES = envint("VENDOR_CHECKIN_FLUSH_MINUTES", "1", minimum=1)
# Auto-pause a rollout when this share (percent) of at least N reports failed.
VENDOR_PAUSE_FAILURE_PERCENT = envint("VENDOR_PAUSE_FAILURE_PERCENT", "20", minimum=1)
VENDOR_PAUSE_MIN_REPORTS = envint("VENDOR_PAUSE_MIN_REPORTS", "5", minimum=1)
# Who is emailed when a rollout pauses itself (defaults to ADMIN_EMAILS).
VENDOR_STAFF_EMAILS = envlist("VENDOR_STAFF_EMAILS", ",".join(ADMIN_EMAILS))
# Staff are told (notification targets) of schools not seen for this many days.
VENDOR_SILENT_SCHOOL_DAYS = envint("VENDOR_SILENT_SCHOOL_DAYS", "7", minimum=1)
VENDOR_SILENT_CHECK_HOURS = envint("VENDOR_SILENT_CHECK_HOURS", "24", minimum=1)
# Bundles from S3-compatible object storage by presigned URL (empty: the web
# process streams them from VENDOR_BUNDLE_DIR).
VENDOR_BUNDLE_S3_BUCKET = os.environ.get("VENDOR_BUNDLE_S3_BUCKET", "")
VENDOR_BUNDLE_S3_PREFIX = os.environ.get("VENDOR_BUNDLE_S3_PREFIX", "bundles/")
VENDOR_BUNDLE_S3_ENDPOINT_URL = os.environ.get("VENDOR_BUNDLE_S3_ENDPOINT_URL", "")
VENDOR_BUNDLE_S3_REGION = os.environ.get("VENDOR_BUNDLE_S3_REGION", "us-east-1")
VENDOR_BUNDLE_S3_ACCESS_KEY_ID = envstr("VENDOR_BUNDLE_S3_ACCESS_KEY_ID", "")
VENDOR_BUNDLE_S3_SECRET_ACCESS_KEY = envstr("VENDOR_BUNDLE_S3_SECRET_ACCESS_KEY", "")
VENDOR_BUNDLE_URL_SECONDS = envint("VENDOR_BUNDLE_URL_SECONDS", "600", minimum=30)
# Check-in history older than this is deleted (schools keep their last_seen).
VENDOR_CHECKIN_KEEP_DAYS = envint("VENDOR_CHECKIN_KEEP_DAYS", "30", minimum=1)
VENDOR_CHECKIN_PRUNE_HOURS = envint("VENDOR_CHECKIN_PRUNE_HOURS", "24", minimum=1)
# Analytics: a school is "not seen" after this many days.
VENDOR_STALE_DAYS = envint("VENDOR_STALE_DAYS", "7", minimum=1)
# Demo: the fixed API key `seed_vendor_demo` gives the demo school.
VENDOR_DEMO_API_KEY = envstr(
    "VENDOR_DEMO_API_KEY", "clms-demo-school-key-0123456789abcdef"
)

# ---------------------------------------------------------------------------
# Backups (app backups)
# ---------------------------------------------------------------------------
# (section owned by backups)

# The CLMS database that backups protect (not the agent's own database, unless
# they are the same): postgresql://user:pass@host:5432/clms or sqlite:///path.
CLMS_DATABASE_URL = envstr("CLMS_DATABASE_URL", DATABASE_URL)
# Where pg_dump, pg_restore and psql live; empty means "search PATH".
CLMS_PG_BINDIR = os.environ.get("CLMS_PG_BINDIR", "")
# The local backup directory (the primary copy of every backup).
BACKUP_DIR = Path(os.environ.get("BACKUP_DIR", str(VAR_DIR / "backups")))
# Server for scratch databases used by verify; empty means the CLMS server itself
# (its "postgres" maintenance database). The user needs CREATEDB there.
BACKUP_SCRATCH_DATABASE_URL = envstr("BACKUP_SCRATCH_DATABASE_URL", "")
BACKUP_ZSTD_LEVEL = envint("BACKUP_ZSTD_LEVEL", "1", minimum=1)
# Compression threads; 0 means one per CPU core.
BACKUP_ZSTD_THREADS = envint("BACKUP_ZSTD_THREADS", "0", minimum=0)
# Retention: the last N, plus the newest of each of the last D days and W weeks.
BACKUP_KEEP_LAST = envint("BACKUP_KEEP_LAST", "7", minimum=1)
BACKUP_KEEP_DAILY = envint("BACKUP_KEEP_DAILY", "7", minimum=0)
BACKUP_KEEP_WEEKLY = envint("BACKUP_KEEP_WEEKLY", "4", minimum=0)
# Cron expression (minute hour day month weekday, UTC) of the nightly prune.
BACKUP_PRUNE_CRON = os.environ.get("BACKUP_PRUNE_CRON", "30 3 * * *")
# How long a backup job waits for another one to finish before giving up.
BACKUP_LOCK_TIMEOUT = envint("BACKUP_LOCK_TIMEOUT", "1800", minimum=1)
# A second copy of every verified backup: "" (none) or "s3".
BACKUP_COPY_TARGET = envchoice("BACKUP_COPY_TARGET", "", ("", "s3"))
BACKUP_S3_BUCKET = os.environ.get("BACKUP_S3_BUCKET", "")
BACKUP_S3_PREFIX = os.environ.get("BACKUP_S3_PREFIX", "clms-backups/")
BACKUP_S3_ENDPOINT_URL = os.environ.get("BACKUP_S3_ENDPOINT_URL", "")
BACKUP_S3_REGION = os.environ.get("BACKUP_S3_REGION", "us-east-1")
BACKUP_S3_ACCESS_KEY_ID = envstr("BACKUP_S3_ACCESS_KEY_ID", "")
BACKUP_S3_SECRET_ACCESS_KEY = envstr("BACKUP_S3_SECRET_ACCESS_KEY", "")
if BACKUP_COPY_TARGET == "s3" and not BACKUP_S3_BUCKET:
    raise ImproperlyConfigured(
        "BACKUP_COPY_TARGET=s3 needs BACKUP_S3_BUCKET (and usually "
        "BACKUP_S3_ENDPOINT_URL and the access keys)."
    )

# ---------------------------------------------------------------------------
# School agent (app updates)
# ---------------------------------------------------------------------------
# (section owned by updates)

# The CLMS version this installation runs when the agent starts for the first
# time; afterwards the agent's own record (updated by each update) is the truth.
CLMS_INSTALLED_VERSION = os.environ.get("CLMS_INSTALLED_VERSION", "1.0.0")
# The vendor server's base URL (the agent calls {URL}/vendor/api/v1/...) and
# this school's API key for it.
UPDATES_VENDOR_URL = os.environ.get("UPDATES_VENDOR_URL", "http://127.0.0.1:8000")
UPDATES_VENDOR_API_KEY = envstr("UPDATES_VENDOR_API_KEY", "")
# Trust: only signatures by these key fingerprints count (several for rotation).
UPDATES_VENDOR_KEY_FINGERPRINTS = envlist("UPDATES_VENDOR_KEY_FINGERPRINTS", "")
# Where the vendor's public key(s) come from: this file, else the source's `keys`.
UPDATES_VENDOR_PUBLIC_KEY_FILE = os.environ.get("UPDATES_VENDOR_PUBLIC_KEY_FILE", "")
UPDATES_GNUPG_HOME = Path(
    os.environ.get("UPDATES_GNUPG_HOME", str(VAR_DIR / "agent-gnupg"))
)
# Sources tried in this order; unknown or unconfigured ones are skipped (logged).
UPDATES_SOURCES = envlist("UPDATES_SOURCES", "mirror,vendor,offline")
# Plain HTTP to a non-loopback source only with this set, and never with DEBUG off.
UPDATES_ALLOW_INSECURE_HTTP = envbool("UPDATES_ALLOW_INSECURE_HTTP", "false")
UPDATES_MAX_RESPONSE_BYTES = envint(
    "UPDATES_MAX_RESPONSE_BYTES", "2097152", minimum=1024
)


def envseconds(name: str, default: str) -> float:
    """Read a positive number of seconds (fractions allowed)."""
    value = os.environ.get(name, default).strip()
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number.") from None
    if number <= 0:
        raise ImproperlyConfigured(f"{name} must be more than 0 seconds.")
    return number


# The whole budget for one request to a source (connect + answer); a source
# that has not answered within it counts as unreachable.
UPDATES_SOURCE_TIMEOUT_SECONDS = envseconds("UPDATES_SOURCE_TIMEOUT_SECONDS", "5")
# A bundle download slower than this (KiB/s, averaged after the first
# UPDATES_SOURCE_TIMEOUT_SECONDS) is cut off: a trickle never holds a worker.
UPDATES_DOWNLOAD_MIN_KIB_PER_SECOND = envint(
    "UPDATES_DOWNLOAD_MIN_KIB_PER_SECOND", "32", minimum=1
)
UPDATES_CHANNEL = envchoice("UPDATES_CHANNEL", "stable", ("stable", "beta"))
# The product this agent installs: a signed document of any other is refused.
UPDATES_PRODUCT = os.environ.get("UPDATES_PRODUCT", "clms")
UPDATES_CHECK_INTERVAL_HOURS = envint("UPDATES_CHECK_INTERVAL_HOURS", "6", minimum=1)
UPDATES_CHECK_JITTER_MINUTES = envint("UPDATES_CHECK_JITTER_MINUTES", "30", minimum=0)
UPDATES_SCHOOL_TIME_ZONE = os.environ.get("UPDATES_SCHOOL_TIME_ZONE", "Europe/London")
try:
    import zoneinfo

    zoneinfo.ZoneInfo(UPDATES_SCHOOL_TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"UPDATES_SCHOOL_TIME_ZONE={UPDATES_SCHOOL_TIME_ZONE!r} is not an IANA time "
        "zone name; use one like Europe/London or America/New_York."
    ) from None
# Transient failures of a run (source or registry unreachable) are retried this
# many times, waiting base * 2**attempt seconds, while still inside the window.
UPDATES_RETRY_MAX_ATTEMPTS = envint("UPDATES_RETRY_MAX_ATTEMPTS", "4", minimum=0)
UPDATES_RETRY_BASE_SECONDS = envint("UPDATES_RETRY_BASE_SECONDS", "120", minimum=1)
# Requests per user on /api/updates/ (on top of the API-wide limits).
UPDATES_API_THROTTLE = os.environ.get("UPDATES_API_THROTTLE", "120/minute")

# -- Critical deadlines, offline bundles, local mirror (updates.enforcement,
#    updates.offline, updates.sources.mirror) ------------------------------
# Deadline warnings go to ADMIN_EMAILS this many hours before a critical
# release's deadline (each once).
_warning_hours = envlist("UPDATES_CRITICAL_WARNING_HOURS", "168,24,1")
if not all(item.isdigit() and int(item) > 0 for item in _warning_hours) or len(
    set(_warning_hours)
) != len(_warning_hours):
    raise ImproperlyConfigured(
        "UPDATES_CRITICAL_WARNING_HOURS must be distinct whole numbers of hours above "
        "0, separated by commas (e.g. 168,24,1)."
    )
UPDATES_CRITICAL_WARNING_HOURS = sorted((int(h) for h in _warning_hours), reverse=True)
# The longest an emergency override may lift the block (hours).
UPDATES_OVERRIDE_MAX_HOURS = envint("UPDATES_OVERRIDE_MAX_HOURS", "24", minimum=1)
# How often beat sends due warnings, plans the critical schedule and expires
# overrides (minutes).
UPDATES_ENFORCEMENT_TICK_MINUTES = envint(
    "UPDATES_ENFORCEMENT_TICK_MINUTES", "5", minimum=1
)
# Secret the CLMS app sends to GET /api/updates/enforcement (as a Bearer header
# or ?token=). Empty: the answer (blocked or not, and why) is public read-only.
UPDATES_ENFORCEMENT_TOKEN = envstr("UPDATES_ENFORCEMENT_TOKEN", "")
# The offline folder (a USB stick's mount point, or a folder on the server)
# scanned for bundles, where refused bundles go, and where bundles are unpacked.
UPDATES_OFFLINE_DIR = Path(
    os.environ.get("UPDATES_OFFLINE_DIR", str(VAR_DIR / "offline"))
)
UPDATES_QUARANTINE_DIR = Path(
    os.environ.get("UPDATES_QUARANTINE_DIR", str(VAR_DIR / "offline-quarantine"))
)
UPDATES_OFFLINE_WORK_DIR = Path(
    os.environ.get("UPDATES_OFFLINE_WORK_DIR", str(VAR_DIR / "offline-work"))
)
# A bundle is accepted until its manifest's expiry plus this many days.
UPDATES_OFFLINE_GRACE_DAYS = envint("UPDATES_OFFLINE_GRACE_DAYS", "90", minimum=0)
UPDATES_OFFLINE_SCAN_MINUTES = envint("UPDATES_OFFLINE_SCAN_MINUTES", "10", minimum=1)
# How often beat compares the running stack with its project (hand edits).
UPDATES_DRIFT_CHECK_MINUTES = envint("UPDATES_DRIFT_CHECK_MINUTES", "30", minimum=1)
# A bundle file changed less than this many seconds ago is left for the next
# scan: it may still be being copied.
UPDATES_OFFLINE_SETTLE_SECONDS = envint(
    "UPDATES_OFFLINE_SETTLE_SECONDS", "30", minimum=0
)
# Limits a bundle must stay within, checked before anything is unpacked.
UPDATES_BUNDLE_MAX_ENTRIES = envint("UPDATES_BUNDLE_MAX_ENTRIES", "1000", minimum=4)
UPDATES_BUNDLE_MAX_MB = envint("UPDATES_BUNDLE_MAX_MB", "8192", minimum=1)
UPDATES_BUNDLE_MAX_RATIO = envint("UPDATES_BUNDLE_MAX_RATIO", "200", minimum=1)
# Serving a mirror to other agents on the LAN: the tokens they may use (empty
# turns the mirror off). Being a mirror's client: its base URL and token.
UPDATES_MIRROR_TOKENS = envlist("UPDATES_MIRROR_TOKENS", "")
UPDATES_MIRROR_URL = os.environ.get("UPDATES_MIRROR_URL", "").rstrip("/")
UPDATES_MIRROR_TOKEN = envstr("UPDATES_MIRROR_TOKEN", "")
# A mirror re-fetches the signed index from upstream when its copy is older.
UPDATES_MIRROR_INDEX_MAX_AGE_SECONDS = envint(
    "UPDATES_MIRROR_INDEX_MAX_AGE_SECONDS", "300", minimum=0
)
# Downloaded manifests and bundles, kept with their checksums; the oldest-used
# files go when the cache grows past the limit.
UPDATES_CACHE_DIR = Path(os.environ.get("UPDATES_CACHE_DIR", str(VAR_DIR / "cache")))
UPDATES_CACHE_MAX_MB = envint("UPDATES_CACHE_MAX_MB", "8192", minimum=1)
# Task modules of the features above (the school role only); their beat
# entries are declared in clms_updates/periodic.py.
if SCHOOL_ROLE_ENABLED:
    CELERY_IMPORTS = ["updates.enforcement.tasks", "updates.offline.tasks"]

# --- The update pipeline (updates.pipeline) ---------------------------------


def envmapping(name: str, default: str) -> dict[str, str]:
    """Read ``key=value,key=value`` pairs."""
    pairs: dict[str, str] = {}
    for item in envlist(name, default):
        key, equals, value = item.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not service=VARIABLE; write it like "
                "app=CLMS_APP_IMAGE,worker=CLMS_APP_IMAGE."
            )
        pairs[key.strip()] = value.strip()
    return pairs


# ---------------------------------------------------------------------------
# The agent updating itself (updates.selfupdate)
# ---------------------------------------------------------------------------

# This agent's own version (its image sets it; reported to the vendor).
AGENT_VERSION = os.environ.get("CLMS_UPDATES_VERSION", "1.0.0")
# The agent's product at the vendor, and the channel its releases come from.
UPDATES_AGENT_PRODUCT = os.environ.get("UPDATES_AGENT_PRODUCT", "clms-updates")
UPDATES_AGENT_CHANNEL = os.environ.get(
    "UPDATES_AGENT_CHANNEL", os.environ.get("UPDATES_CHANNEL", "stable")
)
# Stay on this agent version (empty: follow the releases).
UPDATES_AGENT_PIN = os.environ.get("UPDATES_AGENT_PIN", "").strip()
# A critical agent release is applied in the next maintenance window by itself.
UPDATES_AGENT_AUTO_CRITICAL = envbool("UPDATES_AGENT_AUTO_CRITICAL", "true")
# The agent's own compose project (web, worker, beat) and its folder; empty
# folder: the working directory its containers' compose labels name.
AGENT_COMPOSE_PROJECT = os.environ.get("AGENT_COMPOSE_PROJECT", "clms-updates")
AGENT_PROJECT_DIR = os.environ.get("AGENT_PROJECT_DIR", "")
# How long the new agent has to answer /healthz green and run a task.
AGENT_HEALTH_TIMEOUT_SECONDS = envint("AGENT_HEALTH_TIMEOUT_SECONDS", "180", minimum=10)
# The port the new agent's trial web answers on before the switch (0: any free).
AGENT_TRIAL_PORT = envint("AGENT_TRIAL_PORT", "0", minimum=0)

# The compose project of the CLMS stack (its containers' project label).
CLMS_COMPOSE_PROJECT = os.environ.get("CLMS_COMPOSE_PROJECT", "clms")
# The folder of the stack's compose project (compose.yaml, .env, the school's
# compose.override.yaml). Empty: the working directory its containers' compose
# labels name.
CLMS_PROJECT_DIR = os.environ.get("CLMS_PROJECT_DIR", "")
# Before its first compose release: the stack's own compose file(s), comma
# separated, and the env file `docker compose` reads (the agent rewrites its
# image variables). Empty: what the containers' compose labels name.
CLMS_COMPOSE_FILE = os.environ.get("CLMS_COMPOSE_FILE", "")
CLMS_COMPOSE_ENV_FILE = os.environ.get("CLMS_COMPOSE_ENV_FILE", "")
# The compose CLI to run ("docker compose" or "docker-compose"); empty: the v2
# plugin where the docker CLI has it, else docker-compose.
CLMS_COMPOSE_COMMAND = os.environ.get("CLMS_COMPOSE_COMMAND", "")
# The school's policy for what a release's compose project may do (see
# docs/configuration.md): items allowed although refused by default, like
# network_mode:host, privileged, docker_socket, cap_add:NET_ADMIN, devices.
CLMS_COMPOSE_ALLOW = envlist("CLMS_COMPOSE_ALLOW", "")
# Folders on the host a release may bind-mount (the project folder and
# CLMS_STATE_DIR always may).
CLMS_COMPOSE_BIND_DIRS = envlist("CLMS_COMPOSE_BIND_DIRS", "")
# Which env variable holds each service's image (others: CLMS_<SERVICE>_IMAGE).
CLMS_COMPOSE_IMAGE_VARIABLES = envmapping(
    "CLMS_COMPOSE_IMAGE_VARIABLES", "app=CLMS_APP_IMAGE,worker=CLMS_APP_IMAGE"
)
# The host folder mounted as the CLMS containers' state directory; the
# maintenance flag (maintenance.json) is written here.
CLMS_STATE_DIR = Path(os.environ.get("CLMS_STATE_DIR", str(VAR_DIR / "clms-state")))
# Base URL of the CLMS app as the agent reaches it, for the health check.
CLMS_APP_URL = os.environ.get("CLMS_APP_URL", "http://127.0.0.1:8080").rstrip("/")
# Preflight refuses to start with less free disk than this (MB) for the
# backup directory and the Docker data root.
UPDATES_MIN_FREE_DISK_MB = envint("UPDATES_MIN_FREE_DISK_MB", "1024", minimum=0)
# How long preflight waits for the current version to answer its health check.
UPDATES_PREFLIGHT_HEALTH_SECONDS = envint(
    "UPDATES_PREFLIGHT_HEALTH_SECONDS", "10", minimum=1
)
# Seconds a container gets to stop before it is killed.
UPDATES_STOP_TIMEOUT_SECONDS = envint("UPDATES_STOP_TIMEOUT_SECONDS", "10", minimum=0)
# The longest a release's migration may run before it counts as failed.
UPDATES_MIGRATION_TIMEOUT_SECONDS = envint(
    "UPDATES_MIGRATION_TIMEOUT_SECONDS", "1800", minimum=1
)
# A run whose worker has not written a heartbeat for this long is taken over
# by the next worker that starts (the worker was killed or the host rebooted).
UPDATES_RUN_LEASE_SECONDS = envint("UPDATES_RUN_LEASE_SECONDS", "30", minimum=2)
# After a successful update, untag the images of releases older than the one
# just left (that one stays for a rollback); an image in use always stays.
UPDATES_REMOVE_OLD_IMAGES = envbool("UPDATES_REMOVE_OLD_IMAGES", "true")
# After this many take-overs a changed run is rolled back instead of resumed.
UPDATES_MAX_RESUMES = envint("UPDATES_MAX_RESUMES", "2", minimum=0)

# Notification targets (Apprise; added on the Notifications page or in the
# admin): beat sends what is due and retries failures this often.
NOTIFICATION_RETRY_MINUTES = envint("NOTIFICATION_RETRY_MINUTES", "1", minimum=1)

# ---------------------------------------------------------------------------
# Error tracking: off unless SENTRY_DSN is set; secrets are scrubbed first
# ---------------------------------------------------------------------------

SENTRY_DSN = envstr("SENTRY_DSN", "")
SENTRY_ENVIRONMENT = os.environ.get("SENTRY_ENVIRONMENT", f"clms-{CLMS_ROLE}")
if SENTRY_DSN:
    from clms_updates import errortracking

    errortracking.init(
        SENTRY_DSN,
        config=globals(),
        environment=SENTRY_ENVIRONMENT,
        release=f"clms-updates@{AGENT_VERSION}",
    )
