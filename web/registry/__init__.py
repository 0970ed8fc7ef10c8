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

from . import import_export, pages  # noqa: F401 - their routes are on the blueprint
from .blueprint import bp


def register(app: Flask) -> None:
    """Register the blueprint (the registry's engine hooks come with Services.build)."""
    app.register_blueprint(bp)
    if "csrf" not in app.extensions:  # the staff UI protects every POST; without it, do it here
        from flask_wtf.csrf import CSRFProtect

        CSRFProtect(app)
