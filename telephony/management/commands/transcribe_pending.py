"""`manage.py transcribe_pending [--limit N]`: transcribe recorded calls that have no final transcript.

Run it after a restart (and from cron): calls whose process died are still "active" with a recording on
disk; they are ended with reason "recovered", their WAV header is repaired from the data on disk, and
their audio is transcribed like any other ended call. Segments are stored by index, so running it again
(or after a live transcriber stored some segments) adds nothing twice. Each transcribed call then gets its
ticket draft filled: a draft made while the call was live is updated (what the agent typed is kept), not
made again.
"""

from __future__ import annotations

import json
import logging
import wave
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from hotline import clock
from telephony import drafting, recording, selectors, services, speech
from telephony.models import Call, CallStatus, TranscriptStatus
from ticketing.models import Ticket

logger = logging.getLogger(__name__)

CHUNK_MS = 20
# A call still "active" this long after it started is taken to belong to a process that died.
STALE_AFTER = timedelta(hours=1)


class BrokenRecording(Exception):
    """The call's audio file is missing or cannot be read as 16-bit mono WAV; `reason` is a machine value."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Outcome:
    call_uuid: str
    result: str
    seconds: float = 0.0
    segments: int = 0
    detail: str = ""
    draft: str = ""  # the number of the call's ticket draft, once filled


def _read_recording(path: Path) -> tuple[bytes, int]:
    if not path.is_file():
        raise BrokenRecording(f"{path} does not exist", reason="missing_file")
    try:
        recording.repair(path)
        with wave.open(str(path), "rb") as clip:
            if clip.getsampwidth() != speech.SAMPLE_WIDTH or clip.getnchannels() != 1:
                raise BrokenRecording(f"{path} is not 16-bit mono audio", reason="unsupported_format")
            return clip.readframes(clip.getnframes()), clip.getframerate()
    except (ValueError, wave.Error, EOFError, OSError) as exc:
        raise BrokenRecording(str(exc), reason="unreadable_file") from exc


def _transcribe(call: Call, model: Any) -> Outcome:
    try:
        pcm, rate = _read_recording(services.recording_path(call))
    except BrokenRecording as exc:
        logger.warning("transcribe_pending: call %s failed: %s (%s)", call.call_uuid, exc.reason, exc)
        services.call_transcript_status_set(call_id=call.id, status=TranscriptStatus.FAILED)
        return Outcome(call.call_uuid, "failed", detail=exc.reason)
    transcriber = speech.StreamingTranscriber(model, sample_rate=rate)
    chunk = rate * speech.SAMPLE_WIDTH * CHUNK_MS // 1000
    segments: list[speech.Segment] = []
    for offset in range(0, len(pcm), chunk):
        segments.extend(
            item for item in transcriber.feed(pcm[offset : offset + chunk]) if isinstance(item, speech.Segment)
        )
    segments.extend(transcriber.finish())
    for segment in segments:
        services.call_segment_add(
            call_id=call.id, index=segment.index, text=segment.text, start_ms=segment.start_ms, end_ms=segment.end_ms
        )
    services.call_transcript_status_set(call_id=call.id, status=TranscriptStatus.DONE)
    seconds = len(pcm) / (rate * speech.SAMPLE_WIDTH)
    return Outcome(call.call_uuid, "done", seconds=seconds, segments=len(segments))


def _fill_draft(call: Call) -> Ticket | None:
    try:
        return drafting.call_draft_fill(call_id=call.id)
    except Exception:
        # The transcript is stored; the draft is filled again on the next segment or CTI event of this call.
        logger.exception("transcribe_pending: call %s: ticket draft not filled", call.call_uuid)
        return None


class Command(BaseCommand):
    help = "Transcribe recorded calls without a final transcript (and recover calls of a process that died)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=None, help="at most this many calls")

    def handle(self, *args: Any, **options: Any) -> None:
        limit: int | None = options["limit"]
        calls = selectors.calls_awaiting_transcription(stale_before=clock.now() - STALE_AFTER, limit=limit)
        recovered = 0
        outcomes: list[Outcome] = []
        for call in calls:
            if call.status != CallStatus.ENDED:
                services.call_end(call_id=call.id, reason="recovered")
                recovered += 1
            model = speech.usable_model(line=call.hotline_line)
            if model is None:
                if call.transcript_status == TranscriptStatus.LIVE:
                    services.call_transcript_status_set(call_id=call.id, status=TranscriptStatus.PENDING)
                outcomes.append(Outcome(call.call_uuid, "no_model", detail=f"no speech model for {call.hotline_line}"))
                continue
            outcome = _transcribe(call, model)
            if outcome.result == "done":
                ticket = _fill_draft(call)
                if ticket is not None:
                    outcome.draft = ticket.number
                    outcome.detail = f"draft {ticket.number}"
            outcomes.append(outcome)

        self._table(outcomes)
        if any(outcome.result == "no_model" for outcome in outcomes):
            self.stdout.write("no speech model configured (VOSK_MODEL_PATH): those calls stay pending")
        counts = {
            "considered": len(calls),
            "recovered": recovered,
            "done": sum(outcome.result == "done" for outcome in outcomes),
            "failed": sum(outcome.result == "failed" for outcome in outcomes),
            "no_model": sum(outcome.result == "no_model" for outcome in outcomes),
            "segments": sum(outcome.segments for outcome in outcomes),
            "drafts": sum(bool(outcome.draft) for outcome in outcomes),
        }
        self.stdout.write(json.dumps(counts))

    def _table(self, outcomes: list[Outcome]) -> None:
        self.stdout.write(f"{'call':<38} {'result':<9} {'seconds':>8} {'segments':>8}  detail")
        for outcome in outcomes:
            self.stdout.write(
                f"{outcome.call_uuid:<38} {outcome.result:<9} {outcome.seconds:>8.1f} {outcome.segments:>8}  "
                f"{outcome.detail}"
            )
