"""Thin Flask UI: the app factory, blueprints and the CLI entry. No SpiffWorkflow here.

The factory never starts the timer scheduler: the development server (`gridflow serve`) starts
one in its own process, production runs `gridflow scheduler` beside gunicorn.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from engine import keyfile
from grid.config import ConfigError, Settings

if TYPE_CHECKING:  # Flask is imported by create_app, so `gridflow validate` never loads the web stack
    from flask import Flask

log = logging.getLogger("gridflow.web")
STATIC_MAX_AGE = 365 * 24 * 3600  # a year: versioned static URLs never change content
STATIC_CACHE = f"public, max-age={STATIC_MAX_AGE}, immutable"


UPLOAD_ENDPOINTS = frozenset({"report.create", "tasks.submit", "admin.upload", "registry.import_upload"})
TEXT_FORM_LIMIT = 256 * 1024


def present_modules(names):
    """The modules web.<name> of `names` that exist, imported: a missing one is skipped, an import
    that fails inside one is raised."""
    import importlib

    for name in names:
        try:
            yield importlib.import_module(f"web.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"web.{name}":
                raise


def create_app(settings: Settings | None = None, services=None, **overrides) -> Flask:
    """Application factory: one app per settings object. A production app with an unsafe
    configuration (no secret key, debug on, insecure cookies behind TLS) refuses to start."""
    from flask import Flask, jsonify
    from flask_compress import Compress

    from grid.services import Services

    settings = settings or Settings()
    if settings.production:
        settings.require_safe()
    app = Flask(__name__, instance_path=str(Path(settings.database_url.split("///")[-1]).parent)
                if settings.database_url.startswith("sqlite") else None)
    app.config.update(
        SECRET_KEY=settings.secret_key or _secret_key(app),
        SESSION_COOKIE_NAME="gridflow_session",  # web/ui's setdefault cannot beat Flask's own default
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        GRIDFLOW_SESSION_LIFETIME=settings.session_lifetime,
        MAX_CONTENT_LENGTH=25 * 1024 * 1024,
        DEBUG=settings.debug,
    )
    app.config.update(overrides)
    svc = services or Services.build(settings)
    app.extensions["gridflow"] = svc
    Compress(app)  # registered first, so its after_request runs last, on the final body

    @app.get("/healthz")
    def healthz():
        h = svc.health()  # what a load balancer needs; which database it is, nobody outside
        return jsonify({k: h[k] for k in ("status", "db_ok", "time")})

    @app.before_request
    def _body_limit():
        """Per-route body limits: files only where a form takes files (40 MB a request, and per
        file 10 MB a photo or voice note, 25 MB a video, checked by the attachment store), 256 KB for every other form (sign-in included), 1 MB for
        the API. A bigger body is refused with 413 before it is read."""
        from flask import request

        if request.endpoint in UPLOAD_ENDPOINTS:  # GRIDFLOW_UPLOAD_REQUEST_MB; per file: GRIDFLOW_MAX_*_MB
            request.max_content_length = int(settings.upload_request_mb * 1024 * 1024)
        elif request.blueprint in ("api", "open311"):
            request.max_content_length = 1024 * 1024
        else:
            request.max_content_length = TEXT_FORM_LIMIT
        if request.mimetype == "multipart/form-data" and (None in request.form or None in request.files):
            from werkzeug.exceptions import BadRequest

            raise BadRequest("a form part without a name")  # 400, not a 500 in the CSRF check

    for module in present_modules(("ui", "ui.case_actions", "admin", "admin_org", "registry", "api", "open311",
                                   "notifications", "dashboard", "maps", "intake", "accountability")):
        module.register(app)  # staff UI, admin, registry, exchange
    _static_versions(app)
    app.after_request(_user_for_access_log)
    from . import audit_hooks

    audit_hooks.install(app)  # refusals and exports in the security audit, for every route
    if settings.proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)
    return app


def _static_versions(app: Flask) -> None:
    """url_for('static', filename=...) gains ?v=<content hash>; a request for the current hash is
    cached for a year (immutable), so a changed file gets a new URL instead of a stale cache."""
    from flask import request

    folder = Path(app.static_folder or "")
    hashes: dict[str, tuple[int, str]] = {}

    def version(filename: str) -> str | None:
        path = folder / filename
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return None
        known = hashes.get(filename)
        if known is None or known[0] != stamp:
            known = (stamp, hashlib.sha256(path.read_bytes()).hexdigest()[:12])
            hashes[filename] = known
        return known[1]

    @app.url_defaults
    def _add_version(endpoint: str, values: dict) -> None:
        if endpoint == "static" and "filename" in values and "v" not in values:
            v = version(values["filename"])
            if v:
                values["v"] = v

    @app.after_request
    def _static_cache(resp):
        if request.endpoint == "static" and resp.status_code == 200:
            v = request.args.get("v")
            if v and v == version((request.view_args or {}).get("filename", "")):
                resp.headers["Cache-Control"] = STATIC_CACHE
                resp.headers.pop("Expires", None)
        return resp


def _user_for_access_log(resp):
    """Put the signed-in staff id where gunicorn's access log finds it (`%({gridflow.user}e)s`).
    Reads only a user this request already loaded: static files cost no session lookup."""
    from flask import g, request

    user = g.get("_login_user")
    uid = getattr(user, "id", None)
    if uid is not None:
        request.environ["gridflow.user"] = str(uid)
    return resp


def _secret_key(app: Flask) -> str:
    """A per-installation random key kept in the instance folder (never a hard-coded default),
    created once even when several workers start together (engine.keyfile)."""
    path = Path(app.instance_path) / "secret_key"
    key = keyfile.read_or_create(path, lambda: secrets.token_hex(32))
    if key is None:
        raise ConfigError(f"{path} is empty: delete it (a new key is generated) or set GRIDFLOW_SECRET_KEY")
    return key
