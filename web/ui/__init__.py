"""The staff web app: sign-in, inbox, task forms, reporting, case pages, archive, attachments.

`register(app)` wires Flask-Login, CSRF protection (every POST in the app), Flask-Babel
(the user's language, zh_CN by default; Asia/Shanghai time), session expiry (absolute and
idle), security headers and error pages, then registers the blueprints. Other blueprints
extend `base.html` (blocks `title`, `content`) and may import `services()` from here.
"""
from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from urllib.parse import urlsplit

from babel import support
from flask import Flask, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import Babel, Domain, format_timedelta, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as HTTPNotFound

from engine import clock
from engine.errors import Conflict, InvalidData, NotFound
from grid.cases import labels as case_labels
from grid.errors import Forbidden
from grid.org import accounts

from . import labels


class _CatalogDomain(Domain):
    """Finds the zh_CN catalog for Babel's zh_Hans_CN locale: Babel adds the script to zh_CN, and
    gettext's lookup never drops it again (it would only try zh_Hans_CN and zh)."""

    def get_translations(self):
        locale = get_locale()
        if locale is None:
            return support.NullTranslations()
        key = (str(locale), self.domain[0])
        found = self.cache.get(key)
        if found is None:
            names = [str(locale)] + ([f"{locale.language}_{locale.territory}"] if locale.territory else [])
            names.append(locale.language)
            found = support.Translations()
            for dirname in self.translation_directories:
                found.merge(support.Translations.load(dirname, list(dict.fromkeys(names)), self.domain[0]))
            self.cache[key] = found
        return found


class _Babel(Babel):
    @cached_property
    def domain_instance(self):
        return _CatalogDomain(domain=self.domain)


csrf = CSRFProtect()
login_manager = LoginManager()
babel = _Babel()

PUBLIC_ENDPOINTS = {"auth.login", "static", "healthz"}
IDLE_DEFAULT = timedelta(minutes=60)
LIFETIME_DEFAULT = timedelta(hours=8)


def services():
    """The Services object (database, runtime, settings) of the running app."""
    return current_app.extensions["gridflow"]


def form_labels() -> case_labels.Labels:
    """Category and form titles from the deployed forms, looked up once per request."""
    if "gridflow_labels" not in g:
        g.gridflow_labels = case_labels.labels(services())
    return g.gridflow_labels


class StaffUser(UserMixin):
    """The signed-in person as Flask-Login sees them; `id` is the staff id."""

    is_admin = False

    def __init__(self, acc: accounts.Account):
        self.account = acc
        self.id = acc.id
        self.username = acc.username
        self.name = acc.name
        self.locale = acc.locale
        self.roles = acc.roles
        self.is_admin = acc.has_role("admin")

    def has_role(self, *roles: str) -> bool:
        return self.account.has_role(*roles)

    @property
    def is_grid_worker(self) -> bool:
        return self.has_role("grid_worker")

    @property
    def is_supervisor(self) -> bool:
        return self.has_role("supervisor")


@login_manager.user_loader
def _load_user(staff_id: str):
    acc = accounts.account(services(), staff_id)
    return StaffUser(acc) if acc else None


def _locale() -> str:
    if current_user and current_user.is_authenticated:
        return current_user.locale
    lang = session.get("lang")
    return lang if lang in accounts.LOCALES else "zh_CN"


def safe_next(target: str | None, default: str = "inbox.index") -> str:
    """A local redirect target (path only, no scheme/host), else the default page."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target:
            return target
    return url_for(default)


def page_arg(name: str = "page", last: int = 10_000) -> int:
    """The 1-based page number from the query string (1 if missing or not a number)."""
    try:
        return max(1, min(int(request.args.get(name, 1)), last))
    except ValueError:
        return 1


def routed(path: str) -> bool:
    """Whether some route of this app answers `path` (for nav links to optional blueprints)."""
    try:
        current_app.url_map.bind("localhost").match(path, method="GET")
        return True
    except HTTPException as e:
        return getattr(e, "new_url", None) is not None  # a redirect (e.g. trailing slash) counts
    except Exception:  # noqa: BLE001
        return False


def register(app: Flask) -> None:
    svc = app.extensions.get("gridflow")
    minutes = getattr(getattr(svc, "settings", None), "session_idle_minutes", None)
    idle = timedelta(minutes=float(minutes)) if minutes else IDLE_DEFAULT
    app.config.setdefault("GRIDFLOW_SESSION_LIFETIME", LIFETIME_DEFAULT)
    app.config["PERMANENT_SESSION_LIFETIME"] = app.config["GRIDFLOW_SESSION_LIFETIME"]  # Flask's default is 31 days
    app.config.setdefault("GRIDFLOW_IDLE_TIMEOUT", idle)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the token lives as long as the session
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "zh_CN")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Shanghai")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(app.root_path + "/translations"))
    app.config.setdefault("SESSION_COOKIE_NAME", "gridflow_session")

    csrf.init_app(app)
    babel.init_app(app, locale_selector=_locale, timezone_selector=lambda: "Asia/Shanghai")
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    app.before_request(_guard)
    app.after_request(_headers)
    labels.install(app)
    _error_handlers(app)

    from . import archive, attachments, auth, cases, diagram, inbox, report, tasks
    from . import settings as settings_bp

    for bp in (auth.bp, inbox.bp, tasks.bp, report.bp, cases.bp, archive.bp, attachments.bp, settings_bp.bp,
               diagram.bp):
        app.register_blueprint(bp)

    @app.context_processor
    def _nav():
        return {"routed": routed, "now_utc": clock.now()}


def _guard():
    """Sign-in required everywhere but the login page; absolute and idle session expiry."""
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith("static"):
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    now = clock.now().timestamp()
    started, seen = session.get("t0"), session.get("seen")
    lifetime = current_app.config["PERMANENT_SESSION_LIFETIME"]
    idle = current_app.config["GRIDFLOW_IDLE_TIMEOUT"]
    if started is None or seen is None or now - started > lifetime.total_seconds() or now - seen > idle.total_seconds():
        logout_user()
        session.clear()
        flash(_("Your session has expired. Please sign in again."), "info")
        back = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("auth.login", next=back))
    if now - seen > 30:
        session["seen"] = now
    return None


def _headers(resp):
    h = resp.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "geolocation=(self), camera=(self), microphone=()")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Content-Security-Policy",
                 "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                 "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
                 "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
    if request.is_secure:
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint != "static":  # pages carry personal data: never cache them
        h.setdefault("Cache-Control", "no-store")
    return resp


def _error_handlers(app: Flask) -> None:
    def page(status: int, title: str, message: str, detail: str | None = None):
        return render_template("error.html", status=status, title=title, message=message, detail=detail), status

    @app.errorhandler(NotFound)
    @app.errorhandler(HTTPNotFound)
    def _not_found(e):
        return page(404, _("Not found"), _("This page does not exist, or it is outside your jurisdiction."))

    @app.errorhandler(Forbidden)
    @app.errorhandler(403)
    def _forbidden(e):
        return page(403, _("Not allowed"), _("You are not allowed to do this."))

    @app.errorhandler(Conflict)
    def _conflict(e):
        return page(409, _("Someone else was quicker"),
                    _("This was already changed by someone else, so nothing was saved. "
                      "Reload the page to see the current state."))

    @app.errorhandler(InvalidData)
    def _invalid(e):
        return page(400, _("Invalid data"), _("The data sent was not valid; nothing was saved."))

    @app.errorhandler(CSRFError)
    def _csrf(e):
        if request.endpoint == "auth.login":
            from .auth import login_page

            return login_page(_("The sign-in form expired. Please try again."), 400)
        return page(400, _("The form expired"),
                    _("The form expired or did not come from this site. Reload the page and try again; "
                      "nothing was saved."))

    @app.errorhandler(405)
    def _method(e):
        return page(405, _("Not allowed"), _("This address does not accept this kind of request."))

    @app.errorhandler(413)
    def _too_large(e):
        return page(413, _("Too large"), _("The upload is too large. Each file may be at most 10 MB."))


def due_text(due, now=None) -> str:
    """'in 2 days' / 'overdue by 3 hours' in the user's language."""
    if due is None:
        return ""
    now = now or clock.now()
    delta = due - now
    if delta.total_seconds() < 0:
        return _("overdue by %(t)s", t=format_timedelta(-delta, threshold=0.9))
    return _("due in %(t)s", t=format_timedelta(delta, threshold=0.9))
