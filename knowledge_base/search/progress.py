"""A progress bar for long index work: redrawn in place on a terminal, plain lines otherwise (logs, CI)."""

from __future__ import annotations

import time
from typing import TextIO


class ProgressBar:
    """`advance(n)` as work is done; `close()` prints the final line. Not a terminal: a line every
    `every_seconds` and at the end, never carriage returns."""

    def __init__(self, *, label: str, total: int, stream: TextIO, every_seconds: float = 5.0, width: int = 30):
        self.label = label
        self.total = max(total, 0)
        self.stream = stream
        self.every_seconds = every_seconds
        self.width = width
        self.done = 0
        self.started = time.monotonic()
        self.last_line = 0.0
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def _line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            remaining = (self.total - self.done) / rate if rate > 0 and self.done < self.total else 0.0
            return (
                f"{self.label} [{bar}] {self.done}/{self.total} {fraction:6.1%} "
                f"{rate:,.0f} docs/s, {elapsed:.0f}s elapsed, ~{remaining:.0f}s left"
            )
        return f"{self.label} {self.done} docs, {rate:,.0f} docs/s, {elapsed:.0f}s elapsed"

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self._line())
            self.stream.flush()
        elif now - self.last_line >= self.every_seconds:
            self.last_line = now
            self.stream.write(self._line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        self.stream.write(("\r" if self.tty else "") + self._line() + "\n")
        self.stream.flush()
