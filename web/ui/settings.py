"""Account settings: the interface language, the password, and one's active sessions (each can
be ended here; ending takes effect at once on every node, see grid.org.sessions)."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user

from engine.errors import InvalidData
from grid.org import accounts, sessions

from . import current_session_id, services, session_limits
from .forms import has_control

bp = Blueprint("settings", __name__)
LANGUAGES = (("zh_CN", "简体中文"), ("en", "English"))


def _page(status: int = 200, password_error: str | None = None):
    mine = sessions.active(services(), current_user.id, limits=session_limits(current_app))
    return render_template("settings/index.html", languages=LANGUAGES, sessions=mine,
                           current_session=current_session_id(), password_error=password_error), status


@bp.get("/settings")
def index():
    return _page()


@bp.post("/settings")
def save():
    locale = request.form.get("locale", "")
    if locale not in dict(LANGUAGES):
        flash(_("Choose one of the languages."), "error")
        return _page(422)
    accounts.set_locale(services(), current_user.id, locale)
    with force_locale(locale):
        flash(_("Settings saved."), "success")
    return redirect(url_for("settings.index"))


@bp.post("/settings/password")
def password():
    form = request.form
    current, new, confirm = form.get("current_password", ""), form.get("new_password", ""), form.get("confirm", "")
    if any(has_control(v) for v in (current, new, confirm)):
        return _page(422, _("The format is not valid."))
    try:
        ended = accounts.change_password(services(), current_user.id, current, new, confirm,
                                         keep_session=current_session_id())
    except InvalidData as e:
        from web.admin_org import policy_message  # the policy's own words: length, classes, history

        return _page(422, policy_message(e))
    flash(_("Your password was changed.") + (" " + _("Your other sessions were ended.") if ended else ""), "success")
    return redirect(url_for("settings.index"))


@bp.post("/settings/sessions/end")
def end_session():
    """End one of one's own sessions (the form names it; another person's id ends nothing)."""
    raw = request.form.get("session", "")
    session_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 18 else None
    if session_id is None or session_id == current_session_id():  # this one ends with "Sign out"
        return redirect(url_for("settings.index"))
    if sessions.end(services(), session_id, "ended_by_owner", actor=current_user.id, staff_id=current_user.id):
        flash(_("The session was ended."), "success")
    return redirect(url_for("settings.index"))


@bp.post("/settings/sessions/end-others")
def end_others():
    n = sessions.end_all(services(), current_user.id, "ended_by_owner", actor=current_user.id,
                         keep=current_session_id())
    flash(_("Your other sessions were ended.") if n else _("You have no other sessions."), "success")
    return redirect(url_for("settings.index"))
