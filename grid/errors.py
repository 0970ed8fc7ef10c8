"""Domain errors on top of the engine's (NotFound, Conflict, InvalidData)."""
from __future__ import annotations

from engine.errors import EngineError


class Forbidden(EngineError):
    """The person may not see or change this (outside their jurisdiction or role)."""
