"""Sign-in and sign-out. Passwords are checked by `grid.org.authenticate` (scrypt hashes, a short
per-account throttle after repeated failures, the same answer and work for every failure); the
session is fresh at every sign-in and expires (see `register`)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from engine import clock
from grid.org import accounts

from . import StaffUser, services
from . import safe_next as _safe_next
from .forms import has_control

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str:
    """`web.ui.safe_next`, also refusing control characters (CR/LF would break the Location header)."""
    return _safe_next(None if has_control(target, single_line=True) else target)


def login_page(error: str | None = None, status: int = 200):
    username, nxt = request.form.get("username", ""), request.values.get("next", "")
    return render_template("auth/login.html", error=error, username="" if has_control(username) else username,
                           next="" if has_control(nxt, single_line=True) else nxt), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    lang = request.args.get("lang")
    if lang in accounts.LOCALES:
        session["lang"] = lang
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(safe_next(request.args.get("next")))
        return login_page()
    svc = services()
    username, password = request.form.get("username", ""), request.form.get("password", "")
    if has_control(username) or has_control(password):  # no account has them; PostgreSQL refuses NUL
        return login_page(_("The format is not valid."), 422)
    staff_id = accounts.sign_in(svc, username, password)
    if staff_id is None:
        return login_page(_("Wrong username or password, or the account is locked for a while after "
                            "repeated failures."), 401)
    acc = accounts.account(svc, staff_id)
    if acc is None:
        return login_page(_("This account is disabled."), 403)
    session.clear()  # a new session at every sign-in (no fixation)
    login_user(StaffUser(acc), remember=False)
    session.permanent = True
    now = clock.now().timestamp()
    session["t0"] = session["seen"] = now
    return redirect(safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))
