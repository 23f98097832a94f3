"""Settings shared by every environment.

Everything that differs between a laptop and a city's data centre comes from the environment, with an
embedded default that needs no service: SQLite, the in-memory channel layer.
"""

import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "insecure-development-key-change-me")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "hotline",
    "ticketing",
    "telephony",
    "knowledge_base",
    "routing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "hotline.urls"
ASGI_APPLICATION = "hotline.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "hotline" / "templates"],
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

# SQLite unless DATABASE_URL names another database (PostgreSQL in production).
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A busy timeout lets concurrent writers wait for the lock instead of failing at once.
    # IMMEDIATE takes the write lock when a transaction starts, so two writers queue on the busy timeout
    # instead of one failing when it upgrades a read lock.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # PostgreSQL's JIT compiles the board's period queries for longer than they run (0.8-1.1 s of 1.4-1.9 s
    # at a million tickets, bench/scale.py); nothing here is a long analytic query that would gain from it.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "ticketing.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True
LOCALE_PATHS = [BASE_DIR / "locale"]

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("HOTLINE_MEDIA_ROOT", BASE_DIR / "var" / "media"))

# Requests larger than this are refused before any view runs (no ticket text comes near it).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Realtime: in-memory for one process; Redis when several Daphne processes share the load.
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # Deployments (and test runs) sharing one Redis keep their groups apart by prefix.
            "CONFIG": {"hosts": [REDIS_URL], "prefix": os.environ.get("HOTLINE_CHANNEL_PREFIX", "hotline")},
        }
    }
else:
    # Room for the live events that queue while a reconnecting screen catches up.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}}

# The cache holds rate limits, the public look-up lockout, used challenges and the board's slow panels. One
# process: its own memory. Several Daphne processes must share it, or each would count limits on its own:
# CACHE_URL=redis://host:6379/1 (a database of its own, apart from the channel layer's).
CACHE_URL = os.environ.get("CACHE_URL", "")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Websockets: heartbeat interval; how far back before the last seen event a catch-up also looks (ids are
# taken at insert, so a slower transaction can commit a smaller id after a larger one was delivered);
# how many stored events one catch-up sends at most; how long a broadcast may wait for the channel layer.
HOTLINE_WS_HEARTBEAT_SECONDS = 25
HOTLINE_CATCHUP_GRACE_SECONDS = 2
HOTLINE_CATCHUP_LIMIT = 1000
HOTLINE_BROADCAST_TIMEOUT_SECONDS = 3

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes a missing or bad credential a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "hotline.api.pagination.StandardPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hotline.errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {},
}

SPECTACULAR_SETTINGS = {
    "TITLE": "12345/8890 政务服务便民热线 API",
    "DESCRIPTION": "工单受理、派单、办理、答复、回访与督办的接口。状态只能通过各流转接口改变。",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "ticketing.workflow.Status",
        "ReplyResultEnum": "ticketing.models.ReplyResult",
        "ExternalTargetEnum": "ticketing.models.ExternalTarget",
        "RegionLevelEnum": "ticketing.models.RegionLevel",
        "SupervisionLevelEnum": "ticketing.models.SupervisionLevel",
        "SupervisionStatusEnum": "ticketing.models.SupervisionStatus",
        "ArticleKindEnum": "knowledge_base.models.ArticleKind",
        "ArticleStatusEnum": "knowledge_base.models.ArticleStatus",
        "ArticleVersionStatusEnum": "knowledge_base.models.VersionStatus",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("HOTLINE_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# Hotline lines this deployment answers; the first is the default for new tickets.
HOTLINE_LINES = env_list("HOTLINE_LINES", ["12345", "8890"])

# Working hours on a working day, for deadlines counted in working hours (local time, Asia/Shanghai).
HOTLINE_WORKING_HOURS = [("09:00", "12:00"), ("13:00", "17:00")]

# Working days a department has to answer a supervision order issued by the escalation ladder
# (`manage.py run_sla_monitor`) or escalated to a higher level.
SLA_SUPERVISION_DUE_WORKING_DAYS = int(os.environ.get("SLA_SUPERVISION_DUE_WORKING_DAYS", "2"))
# The web process also sweeps deadlines every this many seconds (0: off), so `make run` needs no separate
# `run_sla_monitor`; sites that run the command as a service may turn it off.
SLA_SWEEP_IN_PROCESS_SECONDS = float(os.environ.get("SLA_SWEEP_IN_PROCESS_SECONDS", "30"))

# Ticket attachments: size limit and the types departments and agents may upload (stored under MEDIA_ROOT,
# served only through the ticket API to those who may see the ticket).
TICKET_ATTACHMENT_MAX_BYTES = int(os.environ.get("TICKET_ATTACHMENT_MAX_BYTES", str(20 * 1024 * 1024)))
TICKET_ATTACHMENT_TYPES = [
    "image/jpeg",
    "image/png",
    "image/webp",
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "audio/wav",
    "audio/mpeg",
    "text/plain",
]

# Agent desk: how long a seat stays in wrap-up (话后处理) after a call before it counts as available again,
# unless the agent finishes sooner (docs/desk.md).
AGENT_WRAP_UP_SECONDS = int(os.environ.get("AGENT_WRAP_UP_SECONDS", "60"))

# Speech (Vosk): the default model, a model per hotline line or language
# ({"8890": "/srv/models/vosk-model-cn-0.22"}), and the ASR worker threads (Vosk decodes without the GIL;
# one worker per core).
VOSK_MODEL_PATH = os.environ.get("VOSK_MODEL_PATH", "")
VOSK_MODELS_BY_LINE: dict[str, str] = json.loads(os.environ.get("VOSK_MODELS_BY_LINE", "{}"))
ASR_WORKERS = int(os.environ.get("ASR_WORKERS", "0")) or os.cpu_count() or 1
# Call audio is decoded in chunks of this many milliseconds: 20 ms frames one by one would pay Vosk's per-call
# overhead fifty times a second; 200 ms still gives the agent five partial results a second.
ASR_CHUNK_MS = int(os.environ.get("ASR_CHUNK_MS", "200"))
# Warmed recognizers kept for reuse per model (0: twice the workers plus four), and whether the web process
# loads and warms the models when it starts (off in tests, which load them when they need them).
ASR_IDLE_RECOGNIZERS = int(os.environ.get("ASR_IDLE_RECOGNIZERS", "0"))
ASR_WARM_AT_START = os.environ.get("ASR_WARM_AT_START", "1") == "1"
# Recognizers per model that the web process seasons at start with 20 s of its own spoken prompts (0: none).
ASR_SEASONED_RECOGNIZERS = int(os.environ.get("ASR_SEASONED_RECOGNIZERS", "4"))

# Spoken prompts are rendered once per text and voice and kept here.
PROMPT_CACHE_DIR = Path(os.environ.get("HOTLINE_PROMPT_CACHE_DIR", BASE_DIR / "var" / "prompts"))

# The SIP door (`manage.py run_sip`): where its user agent listens (UDP, HOST:PORT), the agent (username) who
# takes its calls (empty: none), how long a call may go without RTP before it is ended, the RTP port range,
# and how many calls it takes at once (more are answered 486 Busy Here).
SIP_LISTEN = os.environ.get("SIP_LISTEN", "127.0.0.1:5060")
SIP_AGENT = os.environ.get("SIP_AGENT", "")
SIP_RTP_IDLE_SECONDS = float(os.environ.get("SIP_RTP_IDLE_SECONDS", "10"))
SIP_RTP_PORTS = (10000, 20000)
SIP_MAX_CALLS = int(os.environ.get("SIP_MAX_CALLS", "60"))

# Idempotency keys are kept this long; a retry after that is a new request.
HOTLINE_IDEMPOTENCY_TTL_HOURS = 24

# Search. The backend is the database's own full text (SQLite FTS5 / PostgreSQL tsvector over jieba-segmented
# words) unless ELASTICSEARCH_URL is set; SEARCH_BACKEND ("database" or "elasticsearch") overrides the choice.
ELASTICSEARCH_URL = os.environ.get("ELASTICSEARCH_URL", "")
SEARCH_BACKEND = os.environ.get("SEARCH_BACKEND", "")
# The web process keeps the index current itself every this many seconds (0: off; then run
# `manage.py search_sync --loop 5` as a service, as production does).
SEARCH_SYNC_IN_PROCESS_SECONDS = float(os.environ.get("SEARCH_SYNC_IN_PROCESS_SECONDS", "5"))
# Elasticsearch: aliases are "<prefix>-article" and "<prefix>-ticket"; the analyzer is built in ("cjk") or a
# plugin's ("smartcn"; IK: "ik_max_word" to index with "ik_smart" as the search analyzer); timeouts in seconds.
SEARCH_ES_INDEX_PREFIX = os.environ.get("SEARCH_ES_INDEX_PREFIX", "hotline")
SEARCH_ES_ANALYZER = os.environ.get("SEARCH_ES_ANALYZER", "cjk")
SEARCH_ES_SEARCH_ANALYZER = os.environ.get("SEARCH_ES_SEARCH_ANALYZER", "")
SEARCH_ES_REPLICAS = int(os.environ.get("SEARCH_ES_REPLICAS", "1"))
SEARCH_ES_TIMEOUT_SECONDS = float(os.environ.get("SEARCH_ES_TIMEOUT_SECONDS", "5"))
SEARCH_ES_BULK_TIMEOUT_SECONDS = float(os.environ.get("SEARCH_ES_BULK_TIMEOUT_SECONDS", "60"))
# Ranking: a title match counts this many times a match in the text.
SEARCH_TITLE_WEIGHT = 3
# Words beyond this in one query are ignored (a whole ticket used to find similar ones).
SEARCH_MAX_QUERY_WORDS = 32
SEARCH_SNIPPET_CHARS = 120
# Hotline words jieba should keep whole, and sets of words that mean the same; both also shape the database
# index, so rebuild it (manage.py search_reindex) after changing them.
SEARCH_WORDS: list[str] = ["12345热线", "8890热线", "接诉即办", "未诉先办", "一网通办", "跨省通办", "不动产登记"]
SEARCH_SYNONYMS: list[list[str]] = [
    ["社保卡", "社会保障卡"],
    ["社保", "社会保险"],
    ["医保", "医疗保险"],
    ["公积金", "住房公积金"],
    ["身份证", "居民身份证"],
    ["户口", "户籍"],
    ["低保", "最低生活保障"],
    ["驾照", "驾驶证"],
    ["房产证", "不动产权证书", "不动产证"],
    ["养老金", "退休金"],
    ["失业金", "失业保险金"],
    ["出生证", "出生医学证明"],
    ["噪音", "噪声"],
    ["供暖", "暖气", "采暖"],
    ["燃气", "天然气", "煤气"],
    ["公交", "公交车", "公共汽车"],
    ["欠薪", "拖欠工资", "讨薪"],
    ["城管", "城市管理"],
]
# Index updates that failed are retried with a backoff doubling up to this; after a failure the write path
# stops trying for this long too (the queue keeps everything), so a dead Elasticsearch does not slow writes.
SEARCH_RETRY_MAX_SECONDS = 300
SEARCH_UNAVAILABLE_PAUSE_SECONDS = 30
# Ticket events written up to this long before the newest one read are looked at again (ids are taken at
# insert, so a slower transaction can commit a smaller id later).
SEARCH_TICKET_GRACE_SECONDS = 60
# Processes that segment text during a rebuild (0: one per core).
SEARCH_INDEX_WORKERS = int(os.environ.get("SEARCH_INDEX_WORKERS", "0"))
# The Elasticsearch clients (elastic_transport: 8.x, elasticsearch: 7.x) log every request at INFO.
for _client_logger in ("elastic_transport", "elasticsearch"):
    LOGGING["loggers"][_client_logger] = {"level": "WARNING"}  # type: ignore[index]
# Database search on a large index (SEARCH_COMMON_WORD_MIN_DOCUMENTS or more): the rarest query words pick the
# candidates, as long as they are expected to match at most SEARCH_MAX_CANDIDATES documents, and words in at
# least SEARCH_COMMON_WORD_SHARE of the documents never do; every word still ranks the candidates. Shares are
# estimated from a sample of the index taken again every SEARCH_WORD_STATS_SECONDS.
SEARCH_COMMON_WORD_SHARE = 0.05
SEARCH_COMMON_WORD_MIN_DOCUMENTS = 2000
SEARCH_MAX_CANDIDATES = 1000
SEARCH_WORD_STATS_SECONDS = 600

# Routing recommendations (routing/recommend.py). The evidence of each source is mixed with these weights,
# divided by the total weight of the sources that could answer: the top confidence is the share of the
# evidence that points at one department.
ROUTING_WEIGHTS: dict[str, float] = {"similar_tickets": 0.5, "classifier": 0.35, "responsibility": 0.15}
# Handled tickets found by search that vote for their final lead department.
ROUTING_SIMILAR_LIMIT = 10
# How much of a department's share of similar tickets it returned is taken off its score.
ROUTING_RETURN_PENALTY = 0.5
# Departments, regions and responsibility lists are cached this long per process.
ROUTING_CACHE_SECONDS = 60
# The classifier trained by `manage.py train_router`, loaded on first use (none: routing works without it).
ROUTING_MODEL_PATH = Path(os.environ.get("ROUTING_MODEL_PATH", BASE_DIR / "var" / "routing_model.json"))
# Below this top confidence a ticket goes to manual dispatch (see `manage.py evaluate_routing`).
ROUTING_AUTO_CONFIDENCE = float(os.environ.get("ROUTING_AUTO_CONFIDENCE", "0.5"))

# Routing (routing/). Decision policy per deployment: a rule hit dispatches automatically; the recommender's
# best department at or above ROUTING_AUTO_DISPATCH_CONFIDENCE is dispatched automatically (ROUTING_MODE
# "auto") or pre-selected for the dispatcher ("preselect"); below it the ticket waits in the queue.
ROUTING_MODE = os.environ.get("ROUTING_MODE", "preselect")
ROUTING_AUTO_DISPATCH_CONFIDENCE = float(os.environ.get("ROUTING_AUTO_DISPATCH_CONFIDENCE", "0.8"))
# The dispatcher account `route_pending` acts as (a username with the dispatcher role).
ROUTING_ACTOR = os.environ.get("ROUTING_ACTOR", "")
ROUTING_RECOMMENDER = "routing.recommend.recommend"
# Duplicates: open tickets of the same region and category within this many days, with similar text.
ROUTING_DUPLICATE_WINDOW_DAYS = 7
# Proactive alerts (未诉先办): this many tickets of one region and category within this many days.
ROUTING_CLUSTER_MIN_TICKETS = 3
ROUTING_CLUSTER_DAYS = 7
# Duplicates of one place: the Dice coefficient of the two texts' words must reach this.
ROUTING_DUPLICATE_MIN_SIMILARITY = 0.3

# Callback (回访) after a reply: who makes it by default ("agent": the agents' list; "voice": the automated
# caller, `manage.py run_voice_callbacks`), within how many working days, and after how many calls nobody
# answered the ticket closes as unreachable.
CALLBACK_DEFAULT_METHOD = os.environ.get("CALLBACK_DEFAULT_METHOD", "agent")
CALLBACK_DUE_WORKING_DAYS = int(os.environ.get("CALLBACK_DUE_WORKING_DAYS", "2"))
CALLBACK_MAX_ATTEMPTS = int(os.environ.get("CALLBACK_MAX_ATTEMPTS", "3"))
# The automated caller: Asterisk's AMI (tcp://user:secret@host:5038), the channel each number is dialled on,
# the dialplan context that hands the answered call to our AudioSocket door (see docs/callbacks.md), how long
# it rings, the hours (local time) it may call citizens, how long before an unanswered task is dialled again,
# how long a call may stay unconfirmed before it counts as unanswered, how long the callee has to answer the
# question, and how many calls it places at once.
CALLBACK_AMI_URL = os.environ.get("CALLBACK_AMI_URL", "")
CALLBACK_DIAL = os.environ.get("CALLBACK_DIAL", "PJSIP/{number}@carrier")
CALLBACK_CONTEXT = os.environ.get("CALLBACK_CONTEXT", "hotline-callback")
CALLBACK_RING_SECONDS = int(os.environ.get("CALLBACK_RING_SECONDS", "30"))
CALLBACK_VOICE_HOURS = ("09:00", "20:00")
CALLBACK_VOICE_RETRY_MINUTES = int(os.environ.get("CALLBACK_VOICE_RETRY_MINUTES", "120"))
CALLBACK_VOICE_CALL_TIMEOUT_SECONDS = 300
CALLBACK_VOICE_ANSWER_SECONDS = 8.0
CALLBACK_VOICE_CONCURRENCY = int(os.environ.get("CALLBACK_VOICE_CONCURRENCY", "4"))
# The citizens' rating (POST /api/v1/public/tickets/{number}/rating/) per client address and per ticket: a
# wrong query code costs as much as a right one, so guessing six digits takes years.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].update(  # type: ignore[attr-defined]
    {"public_rating": os.environ.get("PUBLIC_RATING_RATE", "10/hour"), "public_rating_ticket": "30/day"}
)
# The public site (/public/, /api/v1/public/…, docs/public.md). Status look-ups per client address and per ticket
# number; requests filed per client address and per phone number (normalised); challenges issued per address.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].update(  # type: ignore[attr-defined]
    {
        "public_lookup": os.environ.get("PUBLIC_LOOKUP_RATE", "30/hour"),
        "public_lookup_ticket": "60/day",
        "public_submit": os.environ.get("PUBLIC_SUBMIT_RATE", "10/hour"),
        "public_submit_phone": "5/day",
        "public_challenge": "60/hour",
    }
)
# The client address is the connection's own unless this many proxies in front add X-Forwarded-For: a header
# the client writes itself must not pick its own throttle key.
REST_FRAMEWORK["NUM_PROXIES"] = int(os.environ.get("HOTLINE_NUM_PROXIES", "0"))
# After this many wrong query codes for one ticket number within the window, every look-up of that number (the
# right code too) is refused for the lockout; six digits then take years to guess.
PUBLIC_LOOKUP_MAX_FAILURES = 5
PUBLIC_LOOKUP_FAILURE_WINDOW_SECONDS = 15 * 60
PUBLIC_LOOKUP_LOCKOUT_SECONDS = 30 * 60
# The arithmetic question of a submission is valid this long, once; each photo may be this large.
PUBLIC_CHALLENGE_SECONDS = 10 * 60
PUBLIC_PHOTO_MAX_BYTES = 5 * 1024 * 1024

# Department ranking on the supervisor board and in /api/v1/measures/ranking/: the weights of the three rates
# (response, resolution, satisfaction) in the score; a rate a department has no data for shares its weight
# with the others (docs/measures.md).
HOTLINE_RANKING_WEIGHTS: dict[str, float] = {"response": 30, "resolution": 35, "satisfaction": 35}
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"].update(  # type: ignore[attr-defined]
    {
        "CallbackStatusEnum": "ticketing.models.CallbackStatus",
        "CallbackMethodEnum": "ticketing.models.CallbackMethod",
        "SatisfactionEnum": "ticketing.models.Satisfaction",
    }
)

# Open311 GeoReport v2 (/open311/v2/, docs/open311.md): requests filed per client key (an app files for many
# citizens), and reads per client address (one list answers up to 1,000 requests).
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"].update(  # type: ignore[attr-defined]
    {
        "open311_create": os.environ.get("OPEN311_CREATE_RATE", "120/hour"),
        "open311_read": os.environ.get("OPEN311_READ_RATE", "600/hour"),
    }
)
