"""The README's routing benchmark command keeps working: a tiny run on SQLite, end to end.

No timing is asserted (figures belong to the benchmark itself); only that it routes and that the last line is
the JSON summary with the keys scripts read.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_routing_benchmark_runs_and_reports_json(tmp_path):
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "ELASTICSEARCH_URL", "DJANGO_SETTINGS_MODULE")
    }
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "bench/routing.py", "--tickets", "300", "--queries", "10", "--train-size", "100"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["ok"] is True and len(lines) > 1
    assert summary["tickets"] == 300 and summary["backend"] == "database" and summary["queries"] == 10
    for key in ("p50_ms", "p95_ms"):
        assert summary[key] > 0
