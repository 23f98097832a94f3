"""Call audio written to disk as it arrives, always a playable WAV.

The header's two sizes are rewritten after every chunk, so a crash (or a killed worker) leaves a file
that plays up to the last chunk written. `repair` fixes a file whose process died between writing a
chunk and its header, from the file's real length.
"""

import os
import struct
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

HEADER_BYTES = 44


def _header(*, sample_rate: int, channels: int, sample_width: int, data_bytes: int) -> bytes:
    byte_rate = sample_rate * channels * sample_width
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, byte_rate, channels * sample_width, sample_width * 8)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class WavRecorder:
    """Appends 16-bit PCM to a WAV file, keeping the header true after each write."""

    def __init__(self, path: Path, *, sample_rate: int, channels: int = 1, sample_width: int = 2):
        self.path = path
        self.sample_rate = sample_rate
        self.channels = channels
        self.sample_width = sample_width
        self.data_bytes = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._file.write(_header(sample_rate=sample_rate, channels=channels, sample_width=sample_width, data_bytes=0))
        self._file.flush()

    @property
    def duration_ms(self) -> int:
        return self.data_bytes * 1000 // (self.sample_rate * self.channels * self.sample_width)

    def write(self, pcm: bytes) -> None:
        if not pcm:
            return
        self._file.seek(0, 2)
        self._file.write(pcm)
        self.data_bytes += len(pcm)
        self._file.seek(4)
        self._file.write(struct.pack("<I", 36 + self.data_bytes))
        self._file.seek(40)
        self._file.write(struct.pack("<I", self.data_bytes))
        # Flushed to the OS each time: a killed process loses nothing written; fsync is left to close().
        self._file.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def __enter__(self) -> "WavRecorder":
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def repair(path: Path) -> int:
    """Make the header match the data on disk (after a crash); returns the number of audio bytes.

    An odd trailing byte (half a sample) is cut off.
    """
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise ValueError(f"{path} is too short to be a WAV recording ({size} bytes)")
    with open(path, "r+b") as handle:
        header = handle.read(HEADER_BYTES)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE" or header[36:40] != b"data":
            raise ValueError(f"{path} is not a recording written by WavRecorder")
        channels, sample_rate = struct.unpack("<HI", header[22:28])
        sample_width = struct.unpack("<H", header[34:36])[0] // 8
        frame = channels * sample_width
        data_bytes = (size - HEADER_BYTES) // frame * frame
        handle.truncate(HEADER_BYTES + data_bytes)
        handle.seek(0)
        handle.write(
            _header(sample_rate=sample_rate, channels=channels, sample_width=sample_width, data_bytes=data_bytes)
        )
    return data_bytes
