"""Spoken prompts: Chinese prompt texts, rendered with pyttsx3 (espeak-ng) to cached WAV files.

Voice policy: Debian's espeak-ng plain `cmn` voice reads the pinyin it derives as English letters, so
prompts use `cmn-latn-pinyin` (pyttsx3 id `sit/cmn-latn-pinyin`). pyttsx3 with that voice gives PCM
byte-identical to `espeak-ng -v cmn-latn-pinyin -s 150`.

Digit policy: numbers the caller must note down (ticket number, query code, hotline line, keys to press)
are read one digit at a time, and 1 is read 幺 (yāo), as Chinese hotlines and PBX prompts do, so that
一 (yī) cannot be misheard as 七 (qī) on a narrowband line. A hyphen becomes a pause (，).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from django.conf import settings

DEFAULT_VOICE = "cmn-latn-pinyin"
DEFAULT_RATE = 150
TELEPHONE_RATE = 8000
CLIP_RATE = 16000

CHINESE_DIGITS = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))

logger = logging.getLogger(__name__)
# Renders run one at a time (each in its own process: see `_synthesize`), and are cached on disk.
_engine_lock = threading.Lock()
SYNTH_ATTEMPTS = 3
SYNTH_TIMEOUT_SECONDS = 60
WORKER = Path(__file__).with_name("tts_worker.py")


class PromptUnavailable(RuntimeError):
    """Speech synthesis or conversion cannot run here (espeak-ng, the voice or sox is missing)."""


# texts


def digits_to_chinese(text: str) -> str:
    """Read every ASCII digit as a single Chinese digit, 幺 for 1, space-separated within a run of digits;
    a hyphen between digits becomes a pause. Other characters are kept."""
    out: list[str] = []
    previous_digit = False
    for char in text:
        if char in CHINESE_DIGITS:
            if previous_digit:
                out.append(" ")
            out.append(CHINESE_DIGITS[char])
            previous_digit = True
        elif char == "-":
            out.append("，")
            previous_digit = False
        else:
            out.append(char)
            previous_digit = False
    return "".join(out)


def greeting(line: str) -> str:
    return f"您好，这里是{digits_to_chinese(line)}政务服务便民热线，请讲。"


def ticket_number(number: str) -> str:
    return f"您的工单编号是 {digits_to_chinese(number)}"


def query_code(code: str) -> str:
    return f"您的查询码是 {digits_to_chinese(code)}"


def ticket_status(status_display: str) -> str:
    return f"您查询的工单当前状态是：{status_display}。"


def satisfaction_question() -> str:
    return digits_to_chinese("请按1满意，按2基本满意，按3不满意。")


# rendering


def cache_dir() -> Path:
    configured = getattr(settings, "PROMPT_CACHE_DIR", None)
    return Path(configured) if configured else Path(settings.BASE_DIR) / "var" / "prompts"


def cache_key(text: str, *, voice: str, rate: int) -> str:
    return hashlib.sha256(json.dumps([text, voice, rate], ensure_ascii=False).encode("utf-8")).hexdigest()


def prompt_path(text: str, *, voice: str = DEFAULT_VOICE, rate: int = DEFAULT_RATE) -> Path:
    return cache_dir() / f"{cache_key(text, voice=voice, rate=rate)}.wav"


def render_prompt(text: str, *, voice: str = DEFAULT_VOICE, rate: int = DEFAULT_RATE) -> Path:
    """Return the cached WAV for (text, voice, rate), rendering it first if needed.

    The file is written under a unique temporary name and renamed into place, so concurrent renders of
    the same prompt (threads or processes) never expose a half-written file; the last rename wins and
    every version is identical.
    """
    path = prompt_path(text, voice=voice, rate=rate)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".wav", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _synthesize(text, voice=voice, rate=rate, out=tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _synthesize(text: str, *, voice: str, rate: int, out: Path) -> None:
    """Render in a child process (`tts_worker.py`): pyttsx3's espeak driver sometimes crashes the process it
    runs in, and sometimes writes nothing; either costs one attempt here, never the server."""
    if shutil.which("espeak-ng") is None:
        raise PromptUnavailable("espeak-ng is not installed (run `make system-deps`)")
    # -I: the worker's folder (telephony/, with its selectors.py) must not shadow the standard library.
    command = [sys.executable, "-I", str(WORKER), voice, str(rate), str(out)]
    with _engine_lock:
        for attempt in range(1, SYNTH_ATTEMPTS + 1):
            try:
                # The command is ours (this interpreter, our worker); the text goes on standard input.
                done = subprocess.run(  # noqa: S603
                    command, input=text, capture_output=True, text=True, timeout=SYNTH_TIMEOUT_SECONDS, check=False
                )
            except subprocess.TimeoutExpired:
                logger.warning("prompts: the renderer timed out (attempt %s of %s)", attempt, SYNTH_ATTEMPTS)
                continue
            if done.returncode == 0 and out.stat().st_size > 44:
                return
            if done.returncode == 3:
                raise PromptUnavailable(f"espeak-ng voice {voice!r} is not installed")
            if "No module named 'pyttsx3'" in done.stderr:
                raise PromptUnavailable("pyttsx3 is not installed")
            logger.warning(
                "prompts: the renderer failed (exit %s, attempt %s of %s); rendering again",
                done.returncode,
                attempt,
                SYNTH_ATTEMPTS,
            )
    raise PromptUnavailable(f"espeak-ng produced no audio for {text!r} with voice {voice!r}")


# conversion


def to_pcm(path: Path, *, sample_rate: int) -> bytes:
    """Raw 16-bit signed little-endian mono PCM at `sample_rate`, resampled by sox; deterministic."""
    sox = shutil.which("sox")
    if sox is None:
        raise PromptUnavailable("sox is not installed (run `make system-deps`)")
    # -D: no dither, so the same prompt always gives the same bytes; -G: lower the gain rather than clip,
    # since espeak-ng output is near full scale and resampling overshoots.
    raw = ["-t", "raw", "-r", str(sample_rate), "-c", "1", "-b", "16", "-e", "signed-integer", "-L"]
    command = [sox, "-D", "-G", str(path), *raw, "-"]
    result = subprocess.run(command, capture_output=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise PromptUnavailable(f"sox failed on {path}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def to_telephone_pcm(path: Path) -> bytes:
    """8 kHz PCM, the format AudioSocket carries (320 bytes per 20 ms)."""
    return to_pcm(path, sample_rate=TELEPHONE_RATE)


def to_clip_pcm(path: Path) -> bytes:
    """16 kHz PCM, the format of the test clips and of 16 kHz WebSocket audio."""
    return to_pcm(path, sample_rate=CLIP_RATE)


def telephone_prompt(text: str) -> bytes:
    """The prompt as 8 kHz PCM, ready for `audiosocket.chunk_audio`."""
    return to_telephone_pcm(render_prompt(text))
