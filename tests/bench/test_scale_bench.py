"""The scale benchmark keeps working: a small run on PostgreSQL, end to end.

No timing is asserted (figures belong to the benchmark itself); only that it loads what it was asked to, that
every part ran and that the last line is the JSON summary with the keys scripts read. The benchmark needs
PostgreSQL (COPY); without a reachable server the test is skipped with the reason.
"""

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _server_url() -> str:
    """The PostgreSQL server of DATABASE_URL when it names one, else the local default; the benchmark's own
    database on it is named after this process so parallel runs do not collide."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgres://postgres@127.0.0.1:5432/postgres"
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/scale_bench_{os.getpid()}"))


def _reachable(url: str) -> str | None:
    psycopg = pytest.importorskip("psycopg")
    parts = urllib.parse.urlsplit(url)
    try:
        psycopg.connect(
            host=parts.hostname,
            port=parts.port or 5432,
            user=urllib.parse.unquote(parts.username or "") or None,
            password=urllib.parse.unquote(parts.password or "") or None,
            dbname="postgres",
            connect_timeout=3,
        ).close()
    except psycopg.Error as error:
        return f"PostgreSQL at {parts.hostname}:{parts.port or 5432} is unreachable ({error.__class__.__name__})"
    return None


def test_scale_benchmark_runs_and_reports_json(tmp_path):
    url = _server_url()
    unreachable = _reachable(url)
    if unreachable:
        pytest.skip(f"bench/scale.py needs PostgreSQL: {unreachable}")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "REDIS_URL")}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "bench/scale.py",
            "--tickets",
            "3000",
            "--days",
            "30",
            "--inbox-calls",
            "10",
            "--board-calls",
            "2",
            "--creates",
            "3",
            "--database-url",
            url,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["ok"] is True and len(lines) > 1  # a readable table comes first
    # 3,000 generated plus the tickets created through the services before and after (3 + 5 warm-up each).
    assert summary["tickets"] == 3000 and summary["tickets_in_table"] == 3000 + 2 * (3 + 5)
    assert summary["events"] > 3000 and summary["database"].endswith("dropped")
    assert summary["inbox_calls"] == 10 and summary["board_calls"] == 2 and summary["creates"] == 3
    for key in ("inbox_p95_ms", "board_ms", "create_ms_first", "create_ms_last"):
        assert summary[key] > 0
    figures = summary["board_figures"]
    assert figures["trend_intake"] > 0 and figures["trend_dispatched"] > 0 and figures["ranked_departments"] > 0
    assert 0 < figures["response_rate_30d"] <= 1 and 0 < figures["satisfaction_rate_30d"] <= 1
    # The generator's day counts are what the services would have kept: the board from them shows exactly the
    # figures computed from the generated trail.
    assert summary["day_counts"] > 0 and summary["board_equals_trail"] is True
