"""The registry blueprint (`registry`, under /registry) and what its pages share: the signed-in
person, the template filters and context, the safe way back, error messages."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, abort, current_app, redirect, request
from werkzeug.wrappers import Response

from engine import clock
from engine.errors import EngineError, InvalidData
from grid.registry.models import CATEGORIES, RELATIONS, RISK_LEVELS

from .words import history_fields, page_formats, word

bp = Blueprint("registry", __name__, url_prefix="/registry")


def services():
    """The app's `grid.services.Services`."""
    return current_app.extensions["gridflow"]


def current_staff_id() -> str:
    """The signed-in person's staff id (401 if nobody is signed in)."""
    try:
        from flask_login import current_user
    except ImportError:  # pragma: no cover
        abort(401)
    if not getattr(current_app, "login_manager", None) or not current_user.is_authenticated:
        abort(401)
    return current_user.id


@bp.app_template_filter("registry_dt")
def _dt(v) -> str:
    d = clock.local(v)
    return d.strftime("%Y-%m-%d %H:%M") if d else ""


@bp.app_template_filter("registry_date")
def _d(v) -> str:
    if v is None:
        return ""
    if isinstance(v, date) and not hasattr(v, "hour"):
        return v.isoformat()
    d = clock.local(v)
    return d.strftime("%Y-%m-%d") if d else ""


@bp.context_processor
def _ctx():
    return {"word": word, "history_fields": history_fields, "page_formats": page_formats,
            "CATEGORIES": list(CATEGORIES), "RISKS": list(RISK_LEVELS), "RELATIONS": list(RELATIONS),
            "now": clock.now(), "layout": _layout()}


def _layout() -> str:
    """`base.html` of the staff UI, or a bare page while it is not there."""
    try:
        current_app.jinja_env.get_template("base.html")
        return "base.html"
    except Exception:  # noqa: BLE001
        return "registry/_bare.html"


def back_to(default: str) -> Response:
    """Redirect to the form's `next` if it is a registry page (never elsewhere), else `default`."""
    target = request.form.get("next") or ""
    if target.startswith("/registry/") and "//" not in target and "\\" not in target:
        return redirect(target)
    return redirect(default)


def error_text(e: EngineError) -> str:
    """An engine error as one line for a flash message (each invalid field with its reason)."""
    if isinstance(e, InvalidData) and e.errors:
        return "; ".join(f"{x.get('path')}: {x.get('message')}" for x in e.errors)
    return str(e)


@bp.app_template_filter("thousands")
def _thousands(n) -> str:
    """9761 -> '9,761' (counts on the registry pages)."""
    try:
        return f"{int(n):,}"
    except (TypeError, ValueError):
        return str(n)
