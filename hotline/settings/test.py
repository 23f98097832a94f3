"""Settings for the test suite; DATABASE_URL and REDIS_URL still choose the real parts when set."""

from .base import *  # noqa: F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SECRET_KEY = "test-secret-key"  # noqa: S105

# Tests load the speech model when they need it, not in a background thread at import of the ASGI app.
ASR_WARM_AT_START = False

# No classifier unless a test trains one: a model file on the developer's machine must not change results.
ROUTING_MODEL_PATH = BASE_DIR / "var" / "test-no-routing-model.json"  # noqa: F405
# Tests call search.sync() where they need it; no background thread.
SEARCH_SYNC_IN_PROCESS_SECONDS = 0.0
SLA_SWEEP_IN_PROCESS_SECONDS = 0.0
# No recognizers seasoned with spoken prompts when a door command starts in a test.
ASR_SEASONED_RECOGNIZERS = 0
