"""The notification list (GET /notifications), marking read (POST /notifications/read) and the
unread count for the navigation badge (GET /notifications/unread-count, JSON).

Thin: everything is `grid.cases.notifications`, which only ever reads or changes the signed-in
person's own notifications.
"""
from __future__ import annotations

from flask import Blueprint, Flask, g, jsonify, redirect, render_template, request
from flask_login import current_user

from grid.cases import notifications

from .ui import page_arg, safe_next, services

bp = Blueprint("notifications", __name__)
PER_PAGE = 20


@bp.get("/notifications")
def index():
    page = page_arg(last=500)
    unread_only = request.args.get("unread") == "1"
    data = notifications.page(services(), current_user.id, page, PER_PAGE, unread_only=unread_only)
    return render_template("notifications/index.html", data=data, page=page, unread_only=unread_only)


@bp.post("/notifications/read")
def read():
    """Mark one (`id`) or all (`all=1`) of one's notifications read, then go back."""
    if request.form.get("all") == "1":
        notifications.mark_read(services(), current_user.id)
    else:
        ids = [int(x) for x in request.form.getlist("id") if x.isascii() and x.isdigit() and len(x) < 18][:100]
        notifications.mark_read(services(), current_user.id, ids)
    return redirect(safe_next(request.form.get("next"), "notifications.index"))


@bp.get("/notifications/unread-count")
def unread_count():
    resp = jsonify({"unread": notifications.unread_count(services(), current_user.id)})
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _unread() -> int:
    """The signed-in person's unread count, for the navigation badge (0 when signed out)."""
    if not current_user or not current_user.is_authenticated:
        return 0
    if "gridflow_unread" not in g:  # base.html asks twice (navigation and tab bar)
        g.gridflow_unread = notifications.unread_count(services(), current_user.id)
    return g.gridflow_unread


def register(app: Flask) -> None:
    """The blueprint, and `unread_notifications()` for templates (asked only where a template calls it)."""
    app.register_blueprint(bp)
    app.context_processor(lambda: {"unread_notifications": _unread})
