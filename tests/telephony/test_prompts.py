import math
import shutil
import struct
import threading
import wave

import pytest

from telephony import prompts


@pytest.fixture
def system_tools() -> None:
    # `make test` installs them; a missing tool is a broken set-up, not a reason to skip.
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: run `make system-deps`")


needs_espeak = pytest.mark.usefixtures("system_tools")


@pytest.fixture
def cache(settings, tmp_path):
    settings.PROMPT_CACHE_DIR = tmp_path / "prompts"
    return settings.PROMPT_CACHE_DIR


@pytest.fixture
def synth_calls(monkeypatch):
    calls = []
    real = prompts._synthesize

    def counting(text, **kwargs):
        calls.append(text)
        return real(text, **kwargs)

    monkeypatch.setattr(prompts, "_synthesize", counting)
    return calls


def _rms(frames: bytes) -> float:
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    return math.sqrt(sum(s * s for s in samples) / len(samples))


# texts


def test_digits_to_chinese():
    assert prompts.digits_to_chinese("0123456789") == "零 幺 二 三 四 五 六 七 八 九"
    assert prompts.digits_to_chinese("8890") == "八 八 九 零"
    assert prompts.digits_to_chinese("请按1满意") == "请按幺满意"
    assert prompts.digits_to_chinese("12-3") == "幺 二，三"
    assert prompts.digits_to_chinese("") == ""


def test_ticket_number_text():
    assert prompts.ticket_number("12345-20261122-000123") == (
        "您的工单编号是 幺 二 三 四 五，二 零 二 六 幺 幺 二 二，零 零 零 幺 二 三"
    )


def test_other_prompt_texts():
    assert prompts.greeting("12345").startswith("您好，这里是幺 二 三 四 五政务服务便民热线")
    assert prompts.greeting("8890").startswith("您好，这里是八 八 九 零政务服务便民热线")
    assert prompts.query_code("052301") == "您的查询码是 零 五 二 三 零 幺"
    assert prompts.ticket_status("办理中") == "您查询的工单当前状态是：办理中。"
    assert prompts.satisfaction_question() == "请按幺满意，按二基本满意，按三不满意。"


def test_cache_dir_is_read_at_call_time(settings, tmp_path):
    settings.PROMPT_CACHE_DIR = tmp_path / "a"
    assert prompts.prompt_path("你好").parent == tmp_path / "a"
    del settings.PROMPT_CACHE_DIR
    assert prompts.cache_dir() == settings.BASE_DIR / "var" / "prompts"


def test_cache_key_covers_text_voice_and_rate(cache):
    base = prompts.prompt_path("你好")
    assert base.name == prompts.cache_key("你好", voice="cmn-latn-pinyin", rate=150) + ".wav"
    assert len(base.stem) == 64
    assert prompts.prompt_path("你好", rate=160) != base
    assert prompts.prompt_path("你好", voice="sit/cmn") != base
    assert prompts.prompt_path("您好") != base


# rendering (real espeak-ng through pyttsx3)


@needs_espeak
def test_greeting_renders_to_speech(cache):
    path = prompts.render_prompt(prompts.greeting("12345"))
    assert path.parent == cache
    assert path.read_bytes()[:4] == b"RIFF"
    assert path.read_bytes()[8:12] == b"WAVE"
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        duration = wav.getnframes() / wav.getframerate()
        frames = wav.readframes(wav.getnframes())
    assert 1 < duration < 10
    assert _rms(frames) > 500
    assert not list(cache.glob(".*"))


@needs_espeak
def test_cache_returns_the_same_file_without_rendering_again(cache, synth_calls):
    text = prompts.ticket_status("已办结")
    first = prompts.render_prompt(text)
    mtime = first.stat().st_mtime_ns
    second = prompts.render_prompt(text)
    assert second == first
    assert second.stat().st_mtime_ns == mtime
    assert synth_calls == [text]


@needs_espeak
def test_different_text_gives_a_different_file(cache):
    one = prompts.render_prompt(prompts.query_code("123456"))
    other = prompts.render_prompt(prompts.query_code("654321"))
    assert one != other
    assert one.read_bytes() != other.read_bytes()


@needs_espeak
def test_concurrent_renders_of_one_prompt(cache):
    text = prompts.satisfaction_question()
    results, errors = [], []

    def render():
        try:
            results.append(prompts.render_prompt(text))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=render) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert [p.name for p in cache.iterdir()] == [results[0].name]


@needs_espeak
def test_telephone_pcm_is_8khz_16bit(cache):
    path = prompts.render_prompt(prompts.greeting("8890"))
    with wave.open(str(path)) as wav:
        duration = wav.getnframes() / wav.getframerate()
    pcm = prompts.to_telephone_pcm(path)
    expected = duration * 8000 * 2
    assert abs(len(pcm) - expected) <= expected * 0.05
    assert len(pcm) % 2 == 0
    assert _rms(pcm) > 500
    wide = prompts.to_clip_pcm(path)
    assert abs(len(wide) - duration * 16000 * 2) <= duration * 16000 * 2 * 0.05
    assert prompts.telephone_prompt(prompts.greeting("8890")) == pcm


def test_missing_espeak_raises_prompt_unavailable(cache, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(prompts.PromptUnavailable, match="espeak-ng"):
        prompts.render_prompt("您好")
    assert not cache.exists() or not list(cache.iterdir())


def test_missing_sox_raises_prompt_unavailable(monkeypatch, tmp_path):
    monkeypatch.setattr(prompts.shutil, "which", lambda name: None)
    with pytest.raises(prompts.PromptUnavailable, match="sox"):
        prompts.to_telephone_pcm(tmp_path / "x.wav")


@needs_espeak
def test_missing_voice_raises_prompt_unavailable(cache):
    with pytest.raises(prompts.PromptUnavailable, match="voice"):
        prompts.render_prompt("您好", voice="no-such-voice")
    assert not list(cache.iterdir())


def test_a_renderer_that_crashes_costs_one_attempt_not_the_process(settings, tmp_path, monkeypatch, caplog):
    """pyttsx3's espeak driver now and then dies of a segmentation fault; it runs in a child process, so the
    crash is one failed attempt here (and the next one renders)."""
    settings.PROMPT_CACHE_DIR = tmp_path / "prompts"
    marker = tmp_path / "crashed-once"
    crashing = tmp_path / "worker.py"
    crashing.write_text(
        "import os, signal, sys, runpy\n"
        f"marker = {str(marker)!r}\n"
        "if not os.path.exists(marker):\n"
        "    open(marker, 'w').close()\n"
        "    os.kill(os.getpid(), signal.SIGSEGV)\n"
        f"sys.argv[0] = {str(prompts.WORKER)!r}\n"
        f"runpy.run_path({str(prompts.WORKER)!r}, run_name='__main__')\n"
    )
    monkeypatch.setattr(prompts, "WORKER", crashing)
    path = prompts.render_prompt("您好，请讲。")
    assert path.stat().st_size > 44
    assert marker.exists()
    assert "the renderer failed" in caplog.text


def test_a_renderer_that_always_crashes_is_reported_as_unavailable(settings, tmp_path, monkeypatch):
    settings.PROMPT_CACHE_DIR = tmp_path / "prompts"
    crashing = tmp_path / "worker.py"
    crashing.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    monkeypatch.setattr(prompts, "WORKER", crashing)
    with pytest.raises(prompts.PromptUnavailable):
        prompts.render_prompt("您好，请再说一遍。")
    assert not list((tmp_path / "prompts").glob("*.wav"))


def test_a_text_of_several_clauses_renders_in_a_fresh_process(settings, tmp_path):
    """The first render of a process writes nothing for such a text; the worker renders it again itself."""
    settings.PROMPT_CACHE_DIR = tmp_path / "prompts"
    path = prompts.render_prompt(
        "您好，这里是幺 二 三 四 五政务服务便民热线，现在对您反映的问题进行回访。"
        "您反映的「小区夜间施工噪音扰民」，承办单位答复：已责令停止夜间施工。"
    )
    assert path.stat().st_size > 44
