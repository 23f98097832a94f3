import math
import shutil
import struct
import subprocess
import wave

import pytest

from telephony.recording import WavRecorder, repair

FRAME = 320  # 20 ms of 8 kHz 16-bit mono


def tone(ms: int, *, rate: int = 8000, hz: int = 440) -> bytes:
    samples = rate * ms // 1000
    return b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate))) for i in range(samples))


def test_the_file_plays_after_every_write(tmp_path):
    path = tmp_path / "call.wav"
    audio = tone(200)
    with WavRecorder(path, sample_rate=8000) as recorder:
        for offset in range(0, len(audio), FRAME):
            recorder.write(audio[offset : offset + FRAME])
            # Read while still recording, as a crash would leave it.
            with wave.open(str(path)) as playing:
                assert playing.getnframes() * 2 == offset + len(audio[offset : offset + FRAME])
                assert (playing.getframerate(), playing.getnchannels(), playing.getsampwidth()) == (8000, 1, 2)
        assert recorder.duration_ms == 200
    with wave.open(str(path)) as done:
        assert done.readframes(done.getnframes()) == audio


def test_repair_after_a_crash_between_data_and_header(tmp_path):
    path = tmp_path / "crashed.wav"
    recorder = WavRecorder(path, sample_rate=8000)
    recorder.write(tone(100))
    recorder.close()
    # The process died after appending audio but before rewriting the header (plus half a sample).
    with open(path, "ab") as handle:
        handle.write(tone(60) + b"\x01")
    assert repair(path) == len(tone(160))
    with wave.open(str(path)) as repaired:
        assert repaired.getnframes() == 8000 * 160 // 1000


def test_sox_reads_a_recording_cut_off_mid_call(tmp_path):
    if shutil.which("sox") is None:
        pytest.fail("sox is missing: `make system-deps` installs it")
    path = tmp_path / "live.wav"
    recorder = WavRecorder(path, sample_rate=8000)
    recorder.write(tone(500))
    # Not closed: the call is still going (or the process was killed).
    info = subprocess.run(["sox", "--i", "-D", str(path)], capture_output=True, text=True, check=True)
    assert float(info.stdout) == pytest.approx(0.5, abs=0.01)
    recorder.close()


def test_repair_refuses_what_is_not_a_recording(tmp_path):
    bogus = tmp_path / "bogus.wav"
    bogus.write_bytes(b"not a wav file at all, just some text" * 3)
    with pytest.raises(ValueError):
        repair(bogus)
    short = tmp_path / "short.wav"
    short.write_bytes(b"RIFF")
    with pytest.raises(ValueError):
        repair(short)
