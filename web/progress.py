"""A small CLI progress bar for long work (deploy, import, migration)."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, stream=None, width: int = 30):
        self.label, self.stream, self.width = label, stream or sys.stderr, width
        self.t0 = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, total: int, note: str = "") -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * self.width)
        msg = f"\r{self.label} [{bar:<{self.width}}] {frac:6.1%} {done}/{total} {note[:40]:<40}"
        self.stream.write(msg)
        if done >= total:
            self.stream.write(f" {now - self.t0:.1f}s\n")
        self.stream.flush()
