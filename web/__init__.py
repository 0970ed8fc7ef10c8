"""Thin Flask UI: the app factory, blueprints and the CLI entry. No SpiffWorkflow here."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask, jsonify

from grid.config import Settings


def create_app(settings: Settings | None = None, services=None, **overrides) -> Flask:
    """Application factory: one app per settings object; the scheduler is started by `gridflow serve`."""
    from grid.services import Services

    settings = settings or Settings()
    app = Flask(__name__, instance_path=str(Path(settings.database_url.split("///")[-1]).parent)
                if settings.database_url.startswith("sqlite") else None)
    app.config.update(
        SECRET_KEY=settings.secret_key or _secret_key(app),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=25 * 1024 * 1024,
    )
    app.config.update(overrides)
    svc = services or Services.build(settings)
    app.extensions["gridflow"] = svc

    @app.get("/healthz")
    def healthz():
        return jsonify(svc.health())

    import importlib

    for name in ("ui", "admin", "registry_ui"):  # blueprints: staff UI, version admin, grid registry
        try:
            module = importlib.import_module(f"web.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"web.{name}":
                raise
            continue
        module.register(app)
    return app


def _secret_key(app: Flask) -> str:
    """A per-installation random key kept in the instance folder (never a hard-coded default)."""
    path = Path(app.instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    os.makedirs(app.instance_path, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key
