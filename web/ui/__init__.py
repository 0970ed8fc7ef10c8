"""The staff web app: sign-in, inbox, task forms, reporting, case pages, archive, attachments.

`register(app)` wires server-side sessions (`DbSessionInterface`: the `gridflow_session` cookie
holds only a random token; data, idle and absolute expiry live in the database, see
grid.org.sessions), Flask-Login, CSRF protection (every POST in the app), Flask-Babel (the
user's language, zh_CN by default; Asia/Shanghai time), the audit log's client address,
security headers and error pages, then registers the blueprints. Other blueprints
extend `base.html` (blocks `title`, `content`) and may import `services()` from here.
"""
from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from urllib.parse import urlsplit

from babel import support
from flask import Flask, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.sessions import SessionInterface, SessionMixin, session_json_serializer
from flask_babel import Babel, Domain, format_timedelta, get_locale
from flask_babel import _get_current_context as _babel_context
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, user_logged_out
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.datastructures import CallbackDict
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as HTTPNotFound

from engine import clock
from engine.errors import Conflict, InvalidData, NotFound
from grid.cases import labels as case_labels
from grid.errors import Forbidden
from grid.org import accounts, audit, request_memo, sessions

from . import labels


class _CatalogDomain(Domain):
    """Finds the zh_CN catalog for Babel's zh_Hans_CN locale: Babel adds the script to zh_CN, and
    gettext's lookup never drops it again (it would only try zh_Hans_CN and zh)."""

    def get_translations(self):
        ctx = _babel_context()
        if ctx is not None:  # once per request and locale (force_locale swaps it): every _() asks
            found = getattr(ctx, "gridflow_translations", None)
            locale = getattr(ctx, "babel_locale", None)
            if found is not None and found[0] is self and locale is not None and found[1] is locale:
                return found[2]
        found = self._translations()
        if ctx is not None:
            ctx.gridflow_translations = (self, getattr(ctx, "babel_locale", None), found)
        return found

    def _translations(self):
        locale = get_locale()
        if locale is None:
            return support.NullTranslations()
        key = (tuple(self.translation_directories), str(locale), self.domain[0])  # apps may differ
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
    """Whether some route of this app answers `path` (for nav links to optional blueprints).
    Remembered per app: the routes are fixed once the app serves (base.html asks for every tab)."""
    known = current_app.extensions.setdefault("gridflow_routed", {})
    found = known.get(path)
    if found is None:
        found = known[path] = _routed(path)
    return found


def _routed(path: str) -> bool:
    try:
        current_app.url_map.bind("localhost").match(path, method="GET")
        return True
    except HTTPException as e:
        return getattr(e, "new_url", None) is not None  # a redirect (e.g. trailing slash) counts
    except Exception:  # noqa: BLE001
        return False


class ServerSession(CallbackDict, SessionMixin):
    """The session dict of one request; `token` is the cookie value (None until stored), `owner`
    the staff id it was stored under, `row_id` its table id (for "this session" on the settings
    page); `expired` says a signed-in session just ran out."""

    def __init__(self, initial=None, *, token: str | None = None, loaded: sessions.Loaded | None = None,
                 expired: bool = False, static: bool = False):
        def on_update(self_):
            self_.modified = True

        super().__init__(initial, on_update)
        self.token = token
        self.row_id = loaded.id if loaded else None
        self.owner = loaded.staff_id if loaded else None
        self.last_seen = loaded.last_seen if loaded else None
        self.expired = expired
        self.static = static
        self.modified = False


def session_limits(app: Flask) -> sessions.Limits:
    return sessions.Limits(app.config["GRIDFLOW_IDLE_TIMEOUT"], app.config["PERMANENT_SESSION_LIFETIME"])


class DbSessionInterface(SessionInterface):
    """Sessions in the database (grid.org.sessions), so ending one works at once on every node.

    The id changes whenever the signed-in person does (sign-in, sign-out): the old row is
    deleted and a new token issued, so a token known before sign-in is worthless after it.
    Static files skip the session entirely. Before sign-in nothing is written to the database:
    what an anonymous visitor has (the sign-in form's CSRF secret, the language) travels in a
    signed cookie marked `a.`, so unauthenticated requests cannot fill the session table."""

    serializer = session_json_serializer
    ANON = "a."
    ANON_MAX_AGE = 3600  # seconds: a sign-in page left open longer asks for a fresh form

    def _signer(self, app: Flask):
        from itsdangerous import URLSafeTimedSerializer

        return URLSafeTimedSerializer(app.secret_key, salt="gridflow-anonymous-session",
                                      serializer=self.serializer, signer_kwargs={"key_derivation": "hmac"})

    def open_session(self, app: Flask, request) -> ServerSession:
        if app.static_url_path and request.path.startswith(app.static_url_path + "/"):
            return ServerSession(static=True)
        token = request.cookies.get(self.get_cookie_name(app))
        if token and token.startswith(self.ANON) and len(token) <= 4096:
            from itsdangerous import BadSignature

            try:
                return ServerSession(self._signer(app).loads(token[len(self.ANON):], max_age=self.ANON_MAX_AGE))
            except (BadSignature, ValueError, TypeError):
                return ServerSession()
        if not token or len(token) > 128:
            return ServerSession()
        loaded, expired = sessions.load(app.extensions["gridflow"], token, limits=session_limits(app))
        if loaded is None:
            return ServerSession(expired=expired)
        try:
            data = self.serializer.loads(loaded.data)
        except ValueError:
            data = {}
        return ServerSession(data, token=token, loaded=loaded)

    def _cookie(self, app: Flask, response, token: str | None, session: ServerSession) -> None:
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self.get_cookie_path(app)
        secure, samesite = self.get_cookie_secure(app), self.get_cookie_samesite(app)
        httponly, partitioned = self.get_cookie_httponly(app), self.get_cookie_partitioned(app)
        if token is None:
            response.delete_cookie(name, domain=domain, path=path, secure=secure, httponly=httponly,
                                   samesite=samesite, partitioned=partitioned)
        else:
            response.set_cookie(name, token, expires=self.get_expiration_time(app, session), httponly=httponly,
                                domain=domain, path=path, secure=secure, samesite=samesite, partitioned=partitioned)
        response.vary.add("Cookie")

    def save_session(self, app: Flask, session: ServerSession, response) -> None:
        if session.static:
            return
        svc = app.extensions["gridflow"]
        identity = session.get("_user_id")
        if session.token is not None and identity != session.owner:  # signed in, out, or as someone else
            sessions.end_token(svc, session.token)
            session.token = None
        if session.token is None:
            if not session:
                if request.cookies.get(self.get_cookie_name(app)):
                    self._cookie(app, response, None, session)
                return
            if identity is None:  # not signed in: a signed cookie, no row
                if session.modified or not request.cookies.get(self.get_cookie_name(app), "").startswith(self.ANON):
                    self._cookie(app, response, self.ANON + self._signer(app).dumps(dict(session)), session)
                return
            token = sessions.create(svc, identity, data=self.serializer.dumps(dict(session)),
                                    user_agent=request.user_agent.string, ip=request.remote_addr,
                                    limits=session_limits(app))
            self._cookie(app, response, token, session)
            return
        now = clock.now()
        data = self.serializer.dumps(dict(session)) if session.modified else None
        if data is not None or session.last_seen is None or now - session.last_seen >= sessions.TOUCH_EVERY:
            if not sessions.touch(svc, session.token, data=data, now=now):  # ended meanwhile
                self._cookie(app, response, None, session)


def _signed_out(sender, user=None, **_kw) -> None:
    """Flask-Login's sign-out signal: the audit log's sign-out entry."""
    svc = getattr(sender, "extensions", {}).get("gridflow")
    if svc is not None and getattr(user, "is_authenticated", False):
        audit.log(svc, audit.SIGN_OUT, actor=user.id, subject=user.id)


user_logged_out.connect(_signed_out)


def current_session_id() -> int | None:
    """The table id of this request's session (None before it is stored)."""
    return getattr(session, "row_id", None)


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
    app.session_interface = DbSessionInterface()

    csrf.init_app(app)
    babel.init_app(app, locale_selector=_locale, timezone_selector=lambda: "Asia/Shanghai")
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    app.before_request(_origin)
    app.teardown_request(_origin_done)
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


def _origin():
    """The client address for audit entries written while serving this request, and the request's
    memo of the signed-in person's roles and jurisdiction (grid.org.request_memo: read sessions
    only, emptied after every committed write, gone at the end of the request)."""
    g.gridflow_audit_origin = audit.origin.set(request.remote_addr)
    g.gridflow_request_memo = request_memo.enter()


def _origin_done(_exc=None):
    memo = g.pop("gridflow_request_memo", None)
    if memo is not None:
        try:
            request_memo.leave(memo)
        except ValueError:  # set in another context (cannot happen with sync views): leave it
            pass
    token = g.pop("gridflow_audit_origin", None)
    if token is not None:
        try:
            audit.origin.reset(token)
        except ValueError:  # set in another context (cannot happen with sync views): leave it
            pass


def _guard():
    """Sign-in required everywhere but the login page. Idle and absolute expiry are the session
    store's (an expired session is gone before this runs); here we only say why."""
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith("static"):
        return None
    if current_user.is_authenticated:
        return None
    if getattr(session, "expired", False):
        flash(_("Your session has expired. Please sign in again."), "info")
        back = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("auth.login", next=back))
    return login_manager.unauthorized()


def _headers(resp):
    h = resp.headers
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "geolocation=(self), camera=(self), microphone=(self)")  # voice notes
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Content-Security-Policy",
                 "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                 "img-src 'self' data: blob:; media-src 'self' blob:; font-src 'self' data:; connect-src 'self'; "
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
