"""Configuration from the environment, with defaults that work from a checkout."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Settings:
    database_url: str = field(default_factory=lambda: os.environ.get(
        "GRIDFLOW_DATABASE_URL", f"sqlite:///{ROOT / 'instance' / 'gridflow.sqlite'}"))
    workflows: Path = field(default_factory=lambda: Path(os.environ.get("GRIDFLOW_WORKFLOWS", ROOT / "workflows")))
    forms: Path = field(default_factory=lambda: Path(os.environ.get("GRIDFLOW_FORMS", ROOT / "forms")))
    uploads: Path = field(default_factory=lambda: Path(os.environ.get("GRIDFLOW_UPLOADS", ROOT / "instance" / "uploads")))
    secret_key: str | None = field(default_factory=lambda: os.environ.get("GRIDFLOW_SECRET_KEY"))
    sweep_seconds: float = field(default_factory=lambda: float(os.environ.get("GRIDFLOW_SWEEP_SECONDS", "5")))
    session_idle_minutes: int = field(default_factory=lambda: int(os.environ.get("GRIDFLOW_SESSION_IDLE_MINUTES", "60")))

    @property
    def calendar(self) -> Path:
        return self.workflows / "calendar.yaml"
