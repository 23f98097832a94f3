"""One call's audio path, the same for every door: record to disk as it arrives, transcribe live when a
model is there, show partials on the agent's screen, store final segments, and close cleanly.

The doors (AudioSocket, WebSocket audio, SIP) only decode their protocol and hand PCM here, in whatever
frame size they have (20 ms for telephony). Audio is written to disk frame by frame, and gathered into
chunks of `ASR_CHUNK_MS` for the recognizer. Decoding runs on the transcription thread pool (Vosk releases
the GIL), one chunk at a time per call so segments keep their order; database writes go through the call
services on Django's sync thread.

After each final segment the ticket draft is filled (`drafting.call_draft_fill`) and the knowledge base's
best answers are suggested to the agent (`assist.call_assist`), in a background task of the call, so the
audio path never waits for them: segments that arrive meanwhile are taken by one more round after it.
Partial and final text is checked for emergency words (`drafting.call_emergency_check`). A failure in any
of these is logged and never breaks the call or its transcript.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from . import assist, drafting, extraction, services, speech
from .models import Call, TranscriptStatus
from .recording import WavRecorder

logger = logging.getLogger(__name__)
T = TypeVar("T")


def _run_and_close(fn: Callable[..., T], kwargs: dict[str, Any]) -> T:
    try:
        return fn(**kwargs)
    finally:
        close_old_connections()


async def _in_worker_thread(fn: Callable[..., T], **kwargs: Any) -> T:
    """Run slower database work (draft filling, searching, routing: tens of milliseconds) on a worker thread
    of its own rather than Django's one shared sync thread, where it would hold up every call's partials
    and the web process's requests; the thread's database connection is released afterwards. SQLite takes
    one writer at a time whatever the threads, so there it stays on the shared thread."""
    if connection.vendor == "sqlite":
        return await sync_to_async(fn)(**kwargs)
    return await sync_to_async(_run_and_close, thread_sensitive=False)(fn, kwargs)


class CallPipeline:
    """Owns the recorder and the transcriber of one call leg. Use `open()`, `audio()`, then `close()`."""

    def __init__(self, call: Call, *, model: Any | None):
        self.call = call
        self.model = model
        self.recorder: WavRecorder | None = None
        self.transcriber: speech.StreamingTranscriber | None = None
        self.closed = False
        self._pending = bytearray()
        # Emergency kinds already alerted for this call, so later partials repeating the words skip the trip
        # to the database (the service itself dedupes from the call's trail).
        self._alerted: set[str] = set()
        self._fill_task: asyncio.Task[None] | None = None
        self._suggested: tuple[int, ...] = ()
        self._routed: assist.RouteKey | None = None
        self._fill_wanted = False
        # Chunks waiting for the recognizer: the door's read loop only writes to disk and queues, so a busy
        # recognizer never holds back the recording; the transcript may lag, the audio never does.
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._decoder: asyncio.Task[None] | None = None
        self.live_failed = False
        # Told every final segment's text (the automated callback listens for the answer in it).
        self.on_final: Callable[[str], Awaitable[None]] | None = None
        chunk_ms = max(int(getattr(settings, "ASR_CHUNK_MS", 200)), 20)
        self._chunk_bytes = call.sample_rate * speech.SAMPLE_WIDTH * chunk_ms // 1000

    @classmethod
    async def open(cls, call: Call) -> "CallPipeline":
        model = await sync_to_async(speech.usable_model, thread_sensitive=False)(line=call.hotline_line)
        pipeline = cls(call, model=model)
        pipeline.recorder = WavRecorder(services.recording_path(call), sample_rate=call.sample_rate)
        if model is not None:
            pipeline.transcriber = await asyncio.get_running_loop().run_in_executor(
                speech.transcription_pool(),
                lambda: speech.StreamingTranscriber(model, sample_rate=call.sample_rate),
            )
        elif call.transcript_status == TranscriptStatus.LIVE:
            # The door hoped for a live transcript; tell the screen there is none (it is transcribed later).
            await sync_to_async(services.call_transcript_status_set)(call_id=call.id, status=TranscriptStatus.PENDING)
        return pipeline

    async def audio(self, pcm: bytes) -> None:
        if self.closed or not pcm:
            return
        assert self.recorder is not None
        self.recorder.write(pcm)
        if self.transcriber is None:
            return
        self._pending += pcm
        if len(self._pending) < self._chunk_bytes:
            return
        self._chunks.put_nowait(bytes(self._pending))
        self._pending.clear()
        if self._decoder is None:
            self._decoder = asyncio.create_task(self._decode())

    async def _decode(self) -> None:
        """Feed queued chunks to the recognizer one at a time, in order, and publish what it hears."""
        assert self.transcriber is not None
        loop = asyncio.get_running_loop()
        while True:
            chunk = await self._chunks.get()
            try:
                results = await loop.run_in_executor(speech.transcription_pool(), self.transcriber.feed, chunk)
                await self._publish(results)
            except Exception:
                logger.exception("call %s: a chunk could not be transcribed live", self.call.call_uuid)
                self.live_failed = True
            finally:
                self._chunks.task_done()

    async def drain(self) -> None:
        """Wait until every queued chunk has been decoded and published."""
        await self._chunks.join()

    async def _publish(self, results: list[speech.Partial | speech.Segment]) -> None:
        for result in results:
            if isinstance(result, speech.Segment):
                await sync_to_async(services.call_segment_add)(
                    call_id=self.call.id,
                    index=result.index,
                    text=result.text,
                    start_ms=result.start_ms,
                    end_ms=result.end_ms,
                )
                await self._check_emergency(result.text)
                self._schedule_fill()
                if self.on_final is not None:
                    try:
                        await self.on_final(result.text)
                    except Exception:
                        logger.exception("call %s: the final-text listener failed", self.call.call_uuid)
            else:
                await sync_to_async(services.call_partial)(
                    call_id=self.call.id, text=result.text, audio_ms=result.audio_ms
                )
                await self._check_emergency(result.text)

    async def _check_emergency(self, text: str) -> None:
        # Matching words is microseconds of pure string work, done here so that the many partials without
        # emergency words never queue on the sync thread behind database writes.
        kinds = {emergency.kind for emergency in extraction.find_emergencies(text)} - self._alerted
        if not kinds:
            return
        try:
            await sync_to_async(drafting.call_emergency_check)(call_id=self.call.id, text=text)
        except Exception:
            logger.exception("call %s: emergency check failed", self.call.call_uuid)
            return
        self._alerted |= kinds

    def _schedule_fill(self) -> None:
        self._fill_wanted = True
        if self._fill_task is None or self._fill_task.done():
            self._fill_task = asyncio.create_task(self._fill_draft())

    async def _fill_draft(self) -> None:
        while self._fill_wanted:
            self._fill_wanted = False
            try:
                await _in_worker_thread(drafting.call_draft_fill, call_id=self.call.id)
            except Exception:
                logger.exception("call %s: ticket draft not filled", self.call.call_uuid)
            try:
                self._suggested = await _in_worker_thread(
                    assist.call_assist, call_id=self.call.id, shown=self._suggested
                )
            except Exception:
                logger.exception("call %s: answer suggestions failed", self.call.call_uuid)
            try:
                self._routed = await _in_worker_thread(assist.call_route, call_id=self.call.id, shown=self._routed)
            except Exception:
                logger.exception("call %s: routing suggestion failed", self.call.call_uuid)

    async def close(self, *, reason: str) -> None:
        """End the call: last words transcribed, the file closed, the session ended. Safe to call twice."""
        if self.closed:
            return
        self.closed = True
        try:
            if self._decoder is not None:
                await self.drain()
                self._decoder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._decoder
            if self.live_failed:
                raise RuntimeError("part of the audio was not transcribed live")
            if self.transcriber is not None:
                transcriber, rest = self.transcriber, bytes(self._pending)
                self._pending.clear()

                def last_words() -> list[speech.Partial | speech.Segment]:
                    results = transcriber.feed(rest) if rest else []
                    segments: list[speech.Partial | speech.Segment] = [
                        r for r in results if isinstance(r, speech.Segment)
                    ]
                    return segments + list(transcriber.finish())

                final = await asyncio.get_running_loop().run_in_executor(speech.transcription_pool(), last_words)
                await self._publish(final)
                await sync_to_async(services.call_transcript_status_set)(
                    call_id=self.call.id, status=TranscriptStatus.DONE
                )
        except Exception:
            # The audio is on disk: `transcribe_pending` finishes the transcript later.
            logger.exception("call %s: live transcription failed at the end", self.call.call_uuid)
            await sync_to_async(services.call_transcript_status_set)(
                call_id=self.call.id, status=TranscriptStatus.PENDING
            )
        finally:
            if self.recorder is not None:
                self.recorder.close()
            if self._fill_task is not None:
                # The draft holds the whole transcript before the call is reported ended.
                await asyncio.gather(self._fill_task, return_exceptions=True)
            await sync_to_async(services.call_end)(call_id=self.call.id, reason=reason)
