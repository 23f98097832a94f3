"""The README's benchmark command keeps working: a tiny run end to end (Daphne, websockets, the API).

No figures are asserted (those belong to the benchmark itself); only that nothing is lost or duplicated
and that the last line is the JSON summary.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_realtime_benchmark_runs_and_loses_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env["TMPDIR"] = str(tmp_path)
    arguments = ["--clients", "6", "--processes", "1", "--transitions", "5", "--rate", "10", "--grace", "2"]
    result = subprocess.run(
        [sys.executable, "bench/realtime.py", *arguments, "--port-base", "8310", "--timeout", "240"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert summary["clients"] == 6 and summary["transitions"] == 5
    assert summary["deliveries"] == summary["expected_deliveries"] > 0
    assert summary["lost"] == 0 and summary["duplicates"] == 0 and summary["misrouted"] == 0
    for key in ("p50_ms", "p95_ms", "p99_ms", "raw_p95_ms", "processes"):
        assert key in summary
