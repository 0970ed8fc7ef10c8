"""A per-installation secret kept in a file, created once (the generated development keys: the
data key, the audit key; the web secret key has the same shape).

Created with O_CREAT|O_EXCL, then read back: when several processes start at once exactly one
writes the key and every one of them uses it (no check-then-write race)."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], str]) -> str | None:
    """The text in `path`, written first with `make()` if the file does not exist; None if it stays
    empty (the writer never finished: the caller says what to do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(make())
    for _ in range(50):  # the winner writes right after creating; wait for its bytes, bounded
        text = path.read_text().strip()
        if text:
            return text
        threading.Event().wait(0.05)
    return None
