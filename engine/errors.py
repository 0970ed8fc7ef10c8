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
    """One validation finding, located by file, line and element id."""

    def __init__(self, file: str, message: str, line: int | None = None, element: str | None = None):
        self.file, self.message, self.line, self.element = file, message, line, element

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
        if self.element:
            where += f" [{self.element}]"
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({self!s})"


class ScriptError(EngineError):
    """A script, condition or expression failed or was refused by the sandbox."""
