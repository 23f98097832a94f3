"""The shared cache for several processes: CACHE_URL picks Redis; without it each process has its own."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _caches(env: dict[str, str]) -> dict:
    script = (
        "import django, json; django.setup(); from django.conf import settings; "
        "from django.core.cache import cache; cache.set('hotline-cache-check', 7, 5); "
        "backend = settings.CACHES['default']['BACKEND']; "
        "print(json.dumps({'backend': backend, 'value': cache.get('hotline-cache-check')}))"
    )
    environment = {k: v for k, v in os.environ.items() if k != "CACHE_URL"}
    environment.update({"DJANGO_SETTINGS_MODULE": "hotline.settings.local", **env})
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_without_cache_url_each_process_has_its_own_memory():
    assert _caches({})["backend"] == "django.core.cache.backends.locmem.LocMemCache"


def test_cache_url_shares_the_cache_through_redis():
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("no Redis on 127.0.0.1:6379 to check CACHE_URL against")
    found = _caches({"CACHE_URL": "redis://127.0.0.1:6379/1"})
    assert found == {"backend": "django.core.cache.backends.redis.RedisCache", "value": 7}
