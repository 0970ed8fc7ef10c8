"""Errors the engine raises; each carries a message meant for a human."""
from __future__ import annotations


class EngineError(Exception):
    """Base class for every error the engine reports to its callers."""


class NotFound(EngineError):
    pass


class Conflict(EngineError):
    """Someone else changed the instance first (optimistic lock or task no longer ready)."""


class InvalidData(EngineError):
    """Task data did not match the task's form schema."""

    def __init__(self, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.errors = errors or []


class DeployError(EngineError):
    """A bundle failed validation. `problems` lists every finding with file, line and element."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class Problem:
    """One validation finding, located by file, line and element id.

    A coded problem (see `engine.problems`) also carries `code` and `args`, the element's
    `name`, the finding in English and Chinese (`en`, `zh`) and what to do instead
    (`hint_en`, `hint_zh`); its `message` then joins all four, so every caller that shows
    `message` or `str(problem)` shows the whole designer-facing text.
    """

    def __init__(self, file: str, message: str, line: int | None = None, element: str | None = None, *,
                 code: str | None = None, args: dict | None = None, name: str | None = None,
                 zh: str | None = None, hint_en: str | None = None, hint_zh: str | None = None):
        self.file, self.line, self.element = file, line, element
        self.code, self.args, self.name = code, dict(args or {}), name
        self.en, self.zh, self.hint_en, self.hint_zh = message, zh, hint_en, hint_zh
        parts = [message]
        if zh:
            parts.append(f"（{zh}）")
        if hint_en or hint_zh:
            parts.append(" What to do: " + " / ".join(h for h in (hint_en, hint_zh) if h))
        self.message = "".join(parts[:2]) + "".join(parts[2:])

    def text(self, lang: str = "en") -> str:
        """The finding and what to do, in one language ("en" or "zh")."""
        if lang.startswith("zh") and self.zh:
            return self.zh + (f" 怎么办：{self.hint_zh}" if self.hint_zh else "")
        return self.en + (f" What to do: {self.hint_en}" if self.hint_en else "")

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
        if self.element:
            where += f" [{self.element}]"
        if self.name:
            where += f" {self.name}"
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({self!s})"


class ScriptError(EngineError):
    """A script, condition or expression failed or was refused by the sandbox."""
