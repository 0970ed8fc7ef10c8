"""Shared pieces of the machine interfaces (/api/v1, /open311/v2): bearer/api_key authentication,
per-client rate limits, the audit of every call, RFC 9457 problem details and ETags."""
from __future__ import annotations

import hashlib
import json

from flask import Response, current_app, g, request

from grid.org import api_clients

PROBLEM = "application/problem+json"
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
          409: "Conflict", 413: "Content Too Large", 422: "Unprocessable Content", 429: "Too Many Requests",
          500: "Internal Server Error"}


def services():
    return current_app.extensions["gridflow"]


class ApiProblem(Exception):
    """Raised in a view: becomes an application/problem+json response."""

    def __init__(self, status: int, detail: str, *, errors: list | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors, self.headers = status, detail, errors, headers or {}


def problem(status: int, detail: str, errors: list | None = None, headers: dict | None = None) -> Response:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail,
            "instance": request.path}
    if errors:
        body["errors"] = errors
    resp = Response(json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM)
    resp.headers["Cache-Control"] = "no-store"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def json_response(data, status: int = 200, *, etag: bool = True) -> Response:
    """JSON with a strong ETag; a matching If-None-Match answers 304 without a body."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    resp = Response(body, status=status, mimetype="application/json")
    resp.headers["Cache-Control"] = "private, no-cache"
    if etag and status == 200:
        tag = hashlib.sha256(body.encode()).hexdigest()[:32]
        resp.set_etag(tag)
        if request.if_none_match.contains(tag):
            resp = Response(status=304)
            resp.set_etag(tag)
            resp.headers["Cache-Control"] = "private, no-cache"
    return resp


def bearer() -> str | None:
    h = request.headers.get("Authorization", "")
    if h[:7].lower() == "bearer ":
        return h[7:].strip()
    return None


def authenticate(token: str | None) -> api_clients.Caller:
    """The calling client, counted against its rate limit; 401/429 otherwise."""
    caller = api_clients.authenticate(services(), token)
    if caller is None:
        raise ApiProblem(401, "a valid, unrevoked API token is required",
                         headers={"WWW-Authenticate": 'Bearer realm="gridflow"'})
    g.api_caller = caller
    ok, retry = api_clients.allow(services(), caller)
    if not ok:
        raise ApiProblem(429, f"rate limit of {caller.rate_per_minute} calls per minute exceeded",
                         headers={"Retry-After": str(retry)})
    return caller


def require(caller: api_clients.Caller, scope: str) -> None:
    if not caller.has(scope):
        raise ApiProblem(403, f"this client lacks the {scope} scope")


def audit_call(resp: Response) -> Response:
    """after_request: one audit entry per authenticated (or refused) call."""
    caller = g.get("api_caller")
    if caller is not None or resp.status_code in (401, 429):
        try:
            api_clients.record_call(services(), caller.id if caller else None, request.method, request.path,
                                    resp.status_code, caller.unit_code if caller else None)
        except Exception:  # noqa: BLE001 - never fail the answer over its audit
            current_app.logger.exception("api audit failed")
    return resp


def allow_public(app, blueprint_name: str) -> None:
    """Let the staff UI's sign-in guard pass this blueprint's endpoints (they authenticate by token)."""
    try:
        from web.ui import PUBLIC_ENDPOINTS, csrf
    except ImportError:  # pragma: no cover - an app without the staff UI
        return
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(blueprint_name + "."):
            PUBLIC_ENDPOINTS.add(rule.endpoint)
    csrf.exempt(app.blueprints[blueprint_name])
