"""A progress line for training, with no dependency: ``ProgressLine`` is a callback
``(words_done, words_total)`` that draws ``label: 45% 1.2M/2.7M words, 850k words/s, 2 s left``
on stderr. On a terminal the line is rewritten in place at most ten times a second; otherwise
(a log file, a pipe) a new line is printed every 10%. Nothing is drawn before the first call,
so an error raised before training starts leaves no half-drawn bar.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _si(n: float) -> str:
    """``n`` with a k / M / G suffix, three significant digits."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.0f}"


class ProgressLine:
    """Draw training progress on ``stream`` (default stderr); call ``close()`` at the end."""

    def __init__(self, label: str, stream: TextIO | None = None, unit: str = "words") -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()  # the rate counts from here, not from the first call
        self.last_draw = 0.0
        self.last_decile = -1
        self.drawn = False
        self.done = 0
        self.total = 0

    def text(self, done: int, total: int, now: float) -> str:
        """The line for ``done`` of ``total`` at time ``now``."""
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        parts = [f"{self.label}: "]
        if total > 0:
            parts.append(f"{100 * min(done, total) // total:3d}% {_si(done)}/{_si(total)} ")
        else:
            parts.append(f"{_si(done)} ")
        parts.append(f"{self.unit}, {_si(rate)} {self.unit}/s")
        if total > done > 0:
            parts.append(f", {(total - done) / rate:.0f} s left")
        return "".join(parts)

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        self.done, self.total = done, total
        if self.tty:
            if now - self.last_draw >= 0.1 or (total and done >= total):
                self.stream.write("\r" + self.text(done, total, now).ljust(78))
                self.stream.flush()
                self.last_draw, self.drawn = now, True
            return
        decile = 10 * done // total if total > 0 else -1
        if decile > self.last_decile:
            self.last_decile = decile
            self.stream.write(self.text(done, total, now) + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End the line (a terminal's line is completed with the final count)."""
        if self.tty and self.drawn:
            self.stream.write("\r" + self.text(self.done, self.total, time.monotonic()).ljust(78))
            self.stream.write("\n")
            self.stream.flush()
