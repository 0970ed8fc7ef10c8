"""The city's own organisation, for administrators (blueprint `admin_org`, /admin/org): the unit
tree (browse, search, add, rename, retire), staff (add, edit, roles, reset password, unlock, move,
deactivate with handover) and the security audit log (filters, XLSX export). The service verbs
(grid.org.admin) check the jurisdiction and write the audit; here are only forms and pages.

Also the forced password change (blueprint `account`, /account/password) and its gate:
`password_change_gate` sends a person who must change their password (after an administrator's
reset, or at first sign-in) to that page before anything else. `register` installs it.
"""
from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from engine import clock
from engine.errors import InvalidData
from grid.org import accounts, admin, audit
from grid.org import admin_pages as pages
from grid.org import service as org
from grid.org.models import ROLES

bp = Blueprint("admin_org", __name__, url_prefix="/admin/org")
account_bp = Blueprint("account", __name__, url_prefix="/account")

KIND_LABELS = {
    audit.SIGN_IN: _l("Sign-in"), audit.SIGN_OUT: _l("Sign-out"), audit.SIGN_IN_FAILURE: _l("Failed sign-in"),
    audit.THROTTLED: _l("Sign-in while throttled"), audit.PASSWORD_CHANGE: _l("Password changed"),
    audit.PASSWORD_CHANGE_FAILURE: _l("Password change refused"), audit.SESSION_ENDED: _l("Sessions ended"),
    audit.ROLE_ASSIGNED: _l("Role assigned"), audit.ROLE_REMOVED: _l("Role removed"),
    audit.PASSWORD_RESET: _l("Password reset"), audit.UNLOCKED: _l("Account unlocked"),
    audit.ACCOUNT_CREATED: _l("Account created"), audit.ACCOUNT_EDITED: _l("Account edited"),
    audit.ACCOUNT_DEACTIVATED: _l("Account deactivated"), audit.ACCOUNT_MOVED: _l("Grid worker moved"),
    audit.TASKS_HANDED_OVER: _l("Tasks handed over"), audit.UNIT_ADDED: _l("Unit added"),
    audit.UNIT_RENAMED: _l("Unit renamed"), audit.UNIT_RETIRED: _l("Unit retired"),
    audit.ORG_IMPORT: _l("Organisation import"), audit.ACCESS_DENIED: _l("Access denied"),
}
POLICY_MESSAGES = {
    "too_short": _l("The new password needs at least %(n)s characters."),
    "classes": _l("The new password needs at least %(c)s of: lower case, upper case, digits, other characters."),
    "username": _l("The new password may not contain your username."),
    "reused": _l("The new password may not be one of your last %(h)s passwords."),
    "control": _l("The format is not valid."),
}
GATE_OPEN = {"account.password", "account.password_save", "auth.logout", "auth.login", "static", "healthz"}


def _svc():
    return current_app.extensions["gridflow"]


def _me() -> str:
    return current_user.id


# ---- the forced password change --------------------------------------------------------------
def must_change_password(user=None) -> bool:
    """Whether the signed-in person still has to replace an initial or reset password."""
    user = user or current_user
    if not getattr(user, "is_authenticated", False):
        return False
    acc = getattr(user, "account", None)
    return bool(getattr(acc, "must_change_password", False))


def password_change_gate():
    """A before_request hook: until the password is changed, every page but the change page,
    sign-out and static files redirects there. None when the request may go on."""
    endpoint = request.endpoint or ""
    if endpoint in GATE_OPEN or endpoint.startswith("static") or not must_change_password():
        return None
    return redirect(url_for("account.password"))


def require_password_changed(view):
    """Decorator form of the gate, for a single view."""
    import functools

    @functools.wraps(view)
    def wrapper(*args, **kw):
        return password_change_gate() or view(*args, **kw)
    return wrapper


def policy_message(e: InvalidData) -> str:
    err = (getattr(e, "errors", None) or [{}])[0]
    if err.get("path") == "current_password":
        return _("The current password is wrong.")
    if err.get("path") == "confirm":
        return _("The two new passwords are not the same.")
    msg = POLICY_MESSAGES.get(err.get("reason"), POLICY_MESSAGES["too_short"])
    return str(msg) % {"n": err.get("min_length", accounts.PASSWORD_MIN), "c": err.get("classes", 3),
                       "h": err.get("history", 5)}


def _password_page(error: str | None = None, status: int = 200):
    from grid.org.policy import Policy

    return render_template("admin_org/password.html", forced=must_change_password(), error=error,
                           rules=Policy.from_env()), status


@account_bp.get("/password")
def password():
    return _password_page()


@account_bp.post("/password")
def password_save():
    from web.ui import current_session_id
    from web.ui.forms import has_control

    form = request.form
    current, new, confirm = form.get("current_password", ""), form.get("new_password", ""), form.get("confirm", "")
    if any(has_control(v) for v in (current, new, confirm)):
        return _password_page(_("The format is not valid."), 422)
    try:
        accounts.change_password(_svc(), _me(), current, new, confirm, keep_session=current_session_id())
    except InvalidData as e:
        return _password_page(policy_message(e), 422)
    flash(_("Your password was changed."), "success")
    return redirect(url_for("inbox.index"))


# ---- administrators only ---------------------------------------------------------------------
@bp.before_request
def _only_org_admins():
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()
    if not admin.is_org_admin(_svc(), _me()):
        admin.deny(_svc(), _me(), f"page {request.path[:100]}")
        abort(403)
    return None


def _back(default_endpoint: str, **kw):
    return redirect(url_for(default_endpoint, **kw))


def _refused(e: Exception) -> None:
    flash(_("Not done: %(e)s", e=str(e)), "error")


def _attempt(done: str | Callable[[Any], str], verb: Callable[..., Any], *args, **kw) -> None:
    """Run one service verb as the signed-in administrator: flash `done` (or `done(result)`) when it
    is done, the reason when it refuses (the verb has changed nothing then)."""
    try:
        result = verb(_svc(), _me(), *args, **kw)
    except org.OrgError as e:
        _refused(e)
        return
    flash(done(result) if callable(done) else done, "success")


@bp.get("/")
def tree():
    q = (request.args.get("q") or "").strip()[:50]
    found = pages.search(_svc(), _me(), q) if q else None
    return render_template("admin_org/tree.html", roots=pages.roots(_svc(), _me()), q=q, found=found)


@bp.get("/units/<code>")
def unit(code: str):
    page = pages.unit_page(_svc(), _me(), code)
    return render_template("admin_org/unit.html", p=page, roles=[r for r in ROLES if r in page["roles"]])


@bp.post("/units/<code>/children")
def add_unit(code: str):
    f = request.form
    try:
        u = admin.add_unit(_svc(), _me(), code, f.get("code", ""), f.get("name", ""))
    except org.OrgError as e:
        _refused(e)
        return _back("admin_org.unit", code=code)
    flash(_("Unit %(n)s added.", n=u.name), "success")
    return _back("admin_org.unit", code=u.code)


@bp.post("/units/<code>/rename")
def rename_unit(code: str):
    _attempt(_("Unit renamed."), admin.rename_unit, code, request.form.get("name", ""))
    return _back("admin_org.unit", code=code)


@bp.post("/units/<code>/retire")
def retire_unit(code: str):
    _attempt(_("Unit retired."), admin.retire_unit, code)
    return _back("admin_org.unit", code=code)


@bp.post("/units/<code>/staff")
def add_staff(code: str):
    f = request.form
    try:
        acc = admin.add_staff(_svc(), _me(), name=f.get("name", ""), unit_code=code, role=f.get("role", ""),
                              username=f.get("username") or None, phone=f.get("phone") or None,
                              title=f.get("title") or None)
    except org.OrgError as e:
        _refused(e)
        return _back("admin_org.unit", code=code)
    return _staff_page(acc.staff_id, initial_password=acc.initial_password, created=True)


def _staff_page(staff_id: str, status: int = 200, **extra):
    page = pages.staff_page(_svc(), _me(), staff_id)
    units = {code for _rid, code, *_rest in page["staff"].roles}
    return render_template("admin_org/staff.html", p=page, roles=ROLES, units=sorted(units), **extra), status


@bp.get("/staff/<staff_id>")
def staff(staff_id: str):
    return _staff_page(staff_id)


@bp.post("/staff/<staff_id>/edit")
def edit_staff(staff_id: str):
    f = request.form
    _attempt(_("Saved."), admin.edit_staff, staff_id, name=f.get("name"), phone=f.get("phone"), title=f.get("title"))
    return _back("admin_org.staff", staff_id=staff_id)


@bp.post("/staff/<staff_id>/roles")
def assign_role(staff_id: str):
    f = request.form
    _attempt(_("Role assigned."), admin.assign_role, staff_id, f.get("unit", "").strip(), f.get("role", ""),
             f.get("title"))
    return _back("admin_org.staff", staff_id=staff_id)


@bp.post("/staff/<staff_id>/roles/<int:role_id>/remove")
def remove_role(staff_id: str, role_id: int):
    admin.remove_role(_svc(), _me(), staff_id, role_id)
    flash(_("Role removed; the person's sessions were ended."), "success")
    return _back("admin_org.staff", staff_id=staff_id)


@bp.post("/staff/<staff_id>/reset-password")
def reset_password(staff_id: str):
    pw = admin.reset_password(_svc(), _me(), staff_id)
    return _staff_page(staff_id, initial_password=pw, created=False)


@bp.post("/staff/<staff_id>/unlock")
def unlock(staff_id: str):
    admin.unlock(_svc(), _me(), staff_id)
    flash(_("The account is unlocked."), "success")
    return _back("admin_org.staff", staff_id=staff_id)


@bp.post("/staff/<staff_id>/move")
def move(staff_id: str):
    _attempt(_("The grid worker was moved."), admin.move_grid_worker, staff_id, request.form.get("grid", "").strip())
    return _back("admin_org.staff", staff_id=staff_id)


@bp.post("/staff/<staff_id>/handover")
def handover(staff_id: str):
    _attempt(lambda n: _("%(n)s task(s) handed over.", n=n), admin.hand_over, staff_id, request.form.get("to", ""))
    return _back("admin_org.staff", staff_id=staff_id)


@bp.post("/staff/<staff_id>/deactivate")
def deactivate(staff_id: str):
    _attempt(lambda n: _("The account is deactivated and signed out everywhere; %(n)s task(s) handed over.", n=n),
             admin.deactivate, staff_id, hand_over_to=request.form.get("to") or None)
    return _back("admin_org.staff", staff_id=staff_id)


# ---- security audit --------------------------------------------------------------------------
def _day(name: str, end: bool = False) -> datetime | None:
    raw = (request.args.get(name) or "").strip()
    try:
        d = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        return None
    at = datetime.combine(d + timedelta(days=1) if end else d, time(0), tzinfo=clock.SHANGHAI)
    return at.astimezone(clock.UTC)


def _audit_filters() -> dict:
    svc = _svc()
    person = (request.args.get("person") or "").strip()[:64]
    person_id = None
    if person:
        from grid.org import accounts as acc

        person_id = acc.staff_id_for(svc, person) or person
    kinds = [k for k in request.args.getlist("kind") if k in audit.KINDS]
    return {"person": person_id, "unit": (request.args.get("unit") or "").strip()[:20] or None,
            "kind": kinds or None, "since": _day("from"), "until": _day("to", end=True)}


def _paths() -> list[str]:
    return admin.admin_paths_of(_svc(), _me())


@bp.get("/audit")
def security_audit():
    from web.ui import page_arg

    f = _audit_filters()
    page = audit.query(_svc(), paths=_paths(), page=page_arg(), per_page=50, **f)
    if request.args.get("format") == "xlsx":
        return _xlsx(f)
    ids = {e.actor for e in page.events} | {e.subject for e in page.events}
    return render_template("admin_org/audit.html", page=page, kinds=KIND_LABELS, args=request.args,
                           names=accounts.staff_names(_svc(), ids),
                           units=accounts.unit_names(_svc(), {e.unit for e in page.events}))


def _xlsx(f: dict):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "audit"
    ws.append([_("When"), _("Kind"), _("Who"), _("Concerning"), _("Unit"), _("IP address"), _("Details")])
    n, page_no = 0, 1
    while True:
        page = audit.query(_svc(), paths=_paths(), page=page_no, per_page=audit.PER_PAGE_MAX, **f)
        names = accounts.staff_names(_svc(), {e.actor for e in page.events} | {e.subject for e in page.events})
        for e in page.events:
            ws.append([clock.local(e.at).strftime("%Y-%m-%d %H:%M:%S"), str(KIND_LABELS.get(e.kind, e.kind)),
                       names.get(e.actor, e.actor or ""), names.get(e.subject, e.subject or ""), e.unit or "",
                       e.ip or "", str(e.detail)])
            n += 1
        if page_no >= page.pages or n >= 50_000:
            break
        page_no += 1
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    name = f"security-audit-{clock.local(clock.now()):%Y%m%d-%H%M}.xlsx"
    return send_file(buf, as_attachment=True, download_name=name,
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


# ---- wiring ----------------------------------------------------------------------------------
def register(app: Flask) -> None:
    """Register both blueprints and the forced-password-change gate (after web.ui's sign-in guard)."""
    app.register_blueprint(bp)
    app.register_blueprint(account_bp)
    app.before_request(password_change_gate)

    @app.context_processor
    def _org_admin_helpers():
        return {"kind_label": lambda k: KIND_LABELS.get(k, k)}
