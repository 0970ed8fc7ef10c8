"""Helpers of the data-exchange tests: registering the blueprints on an app, a prepared world."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def register_exchange(app) -> None:
    """Register /api/v1 and /open311/v2 unless the app factory already did."""
    import web.api
    import web.open311

    for name, module in (("api", web.api), ("open311", web.open311)):
        if name not in app.blueprints:
            module.register(app)


def make_app(svc, tmp_path):
    from tests.web_helpers import make_app as base

    app = base(svc, tmp_path)
    register_exchange(app)
    return app


def fill_boundaries(svc) -> int:
    from grid.cases import routing

    with svc.db.write() as s:
        return routing.fill_demo(s)
