"""The grid registry pages under /registry (blueprint `registry`): "my grid at a glance", household
and resident pages with life events, flags and an audited reveal (`pages`), the import page with
its progress and the export (`import_export`).

`register(app)` is called by `web.create_app`. Pages extend `base.html`. Every word on screen
goes through Flask-Babel (`words`: the registry's codes in the user's language). Every call goes
through `grid.registry` (and `grid.cases.parties` for a resident's cases), which check
jurisdiction and rights; no SQL here.
"""
from __future__ import annotations

from flask import Flask

from grid.registry import visits

from . import import_export, pages  # noqa: F401 - their routes are on the blueprint
from .blueprint import bp


def register(app: Flask) -> None:
    """Register the blueprint and the registry's engine hooks on the app's Services."""
    app.register_blueprint(bp)
    svc = app.extensions.get("gridflow")
    if svc is not None:
        visits.install(svc)
    if "csrf" not in app.extensions:  # the staff UI protects every POST; without it, do it here
        from flask_wtf.csrf import CSRFProtect

        CSRFProtect(app)
