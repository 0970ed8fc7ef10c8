"""What the web layer adds to the security audit (grid.org.audit) for every route at once:
a refusal (HTTP 403) that no service recorded itself, and every export download, each with who,
which route and which path. One hook instead of a line in each view, so a new route is covered."""
from __future__ import annotations

from flask import Flask, current_app, g, request

from grid.org import audit


def _is_export() -> bool:
    """A download of data: an `*export*` view, or a list asked for as a file (?format=xlsx|csv)."""
    return ("export" in (request.endpoint or "").rsplit(".", 1)[-1]
            or request.args.get("format") in ("xlsx", "csv"))


def _reset() -> None:
    g.gridflow_audit_denied = audit.denied.set(False)


def _record(resp):
    uid = getattr(g.get("_login_user"), "id", None)
    if uid is None:
        return resp
    svc = current_app.extensions.get("gridflow")
    detail = {"endpoint": request.endpoint, "method": request.method, "path": request.path[:200]}
    already = audit.denied.get() if "gridflow_audit_denied" in g else False  # reset for this request?
    if resp.status_code == 403 and not already:
        audit.log(svc, audit.ACCESS_DENIED, actor=str(uid), detail=detail)
    elif resp.status_code == 200 and request.method == "GET" and _is_export():
        audit.log(svc, audit.EXPORT, actor=str(uid), detail={**detail, "args": dict(request.args)})
    return resp


def _done(_exc=None) -> None:
    token = g.pop("gridflow_audit_denied", None)
    if token is not None:
        try:
            audit.denied.reset(token)
        except ValueError:
            pass


def install(app: Flask) -> None:
    app.before_request(_reset)
    app.after_request(_record)
    app.teardown_request(_done)
