"""The REST API /api/v1 (blueprint `api`): cases, records, timeline, units with boundaries, the
staff directory, indicators, registry aggregates, the event feed and report intake, for API
clients holding a bearer token. Reads go through grid.cases.api_reads (no SQL here)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo

from flask import Blueprint, Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from engine import clock
from engine.errors import Conflict, InvalidData, NotFound
from grid.cases import api_reads as reads
from grid.errors import Forbidden
from grid.registry import aggregates

from .common import ApiProblem, audit_call, authenticate, bearer, json_response, problem, require, services
from .openapi import document, reference_page

bp = Blueprint("api", __name__, url_prefix="/api/v1")
OPEN = {"api.openapi", "api.reference"}


@bp.before_request
def _auth():
    if request.endpoint in OPEN:
        return None
    authenticate(bearer())
    return None


bp.after_request(audit_call)


@bp.errorhandler(ApiProblem)
def _problem(e: ApiProblem):
    return problem(e.status, e.detail, e.errors, e.headers)


@bp.errorhandler(InvalidData)
def _invalid(e: InvalidData):
    return problem(422, str(e), e.errors)


@bp.errorhandler(Forbidden)
def _forbidden(e):
    return problem(403, str(e))


@bp.errorhandler(NotFound)
def _missing(e):
    return problem(404, str(e))


@bp.errorhandler(Conflict)
def _conflict(e):
    return problem(409, str(e))


@bp.errorhandler(HTTPException)
def _http(e: HTTPException):
    return problem(e.code or 500, e.description or "")


def _caller():
    return g.api_caller


def _int(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiProblem(400, f"{name} must be an integer") from None


def query_time(name: str, naive_tz: tzinfo, what: str) -> datetime | None:
    """The query argument `name` as an aware UTC time (one without an offset is read in `naive_tz`),
    None when it is absent; a 400 problem saying it must be `what` when it is not a time."""
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        v = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiProblem(400, f"{name} must be {what}") from None
    return clock.to_utc(v if v.tzinfo else v.replace(tzinfo=naive_tz))


def _path_for(unit_code: str | None) -> str:
    """The client's jurisdiction, narrowed to `unit_code` when given (403 outside it)."""
    caller = _caller()
    if not unit_code:
        return caller.path
    u = _unit_path(unit_code)
    if not u.startswith(caller.path):
        raise ApiProblem(403, "this unit is outside the client's jurisdiction")
    return u


def _unit_path(code: str) -> str:
    return reads.unit_path(services(), code)


@bp.get("/openapi.json")
def openapi():
    return json_response(document())


@bp.get("/")
@bp.get("/docs")
def reference():
    return Response(reference_page(document()), mimetype="text/html")


@bp.get("/cases")
def cases():
    c = _caller()
    require(c, "cases:read")
    path = _path_for(request.args.get("unit"))
    since = query_time("updated_since", UTC, "an ISO 8601 date-time")
    return json_response(reads.list_cases(services(), path, updated_since=since,
                                          cursor=request.args.get("cursor"), limit=_int("limit", 50),
                                          personal=c.has("personal:read"), status=request.args.get("status"),
                                          category=request.args.get("category")))


@bp.get("/cases/<key>")
def case(key: str):
    c = _caller()
    require(c, "cases:read")
    return json_response(reads.case_detail(services(), c.path, key, c.has("personal:read")))


@bp.get("/cases/<key>/records")
def case_records(key: str):
    c = _caller()
    require(c, "cases:read")
    return json_response({"items": reads.records_of(services(), c.path, key, c.has("personal:read"))})


@bp.get("/cases/<key>/timeline")
def case_timeline(key: str):
    c = _caller()
    require(c, "cases:read")
    d = reads.case_detail(services(), c.path, key, c.has("personal:read"))
    return json_response({"items": d["timeline"]})


@bp.get("/units")
def units():
    path = _path_for(request.args.get("unit"))
    return json_response(reads.units(services(), path, cursor=request.args.get("cursor"), limit=_int("limit", 100),
                                     level=request.args.get("level"),
                                     with_boundary=request.args.get("boundary", "1") != "0"))


@bp.get("/units/<code>")
def unit(code: str):
    _path_for(code)
    return json_response(reads.unit(services(), _caller().path, code))


@bp.get("/staff")
def staff():
    c = _caller()
    path = _path_for(request.args.get("unit"))
    return json_response(reads.staff_directory(services(), path, cursor=request.args.get("cursor"),
                                               limit=_int("limit", 100), personal=c.has("personal:read")))


def _day(name: str, default: date) -> date:
    raw = request.args.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiProblem(400, f"{name} must be a date (YYYY-MM-DD)") from None


@bp.get("/indicators")
def indicators():
    c = _caller()
    require(c, "indicators:read")
    code = request.args.get("unit") or c.unit_code
    _path_for(code)
    today = clock.local(clock.now()).date()
    return json_response(reads.indicators(services(), c.path, code, _day("start", today - timedelta(days=30)),
                                          _day("end", today)))


@bp.get("/registry/aggregates")
def registry_aggregates():
    c = _caller()
    require(c, "registry:aggregates")
    return json_response({"items": aggregates.per_grid(services(), _path_for(request.args.get("unit")))})


@bp.get("/events")
def events():
    c = _caller()
    require(c, "cases:read")
    return json_response(reads.events(services(), c.path, after=_int("after", 0), limit=_int("limit", 100)),
                         etag=False)


@bp.post("/reports")
def create_report():
    """A report from outside the grid (hotline system, public channel): routed by its location."""
    from grid.cases import intake

    c = _caller()
    require(c, "reports:create")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the JSON decoder recurses per nesting level; silent= catches only ValueError
        raise ApiProblem(400, "the JSON body is nested too deeply") from None
    if not isinstance(body, dict):
        raise ApiProblem(400, "a JSON object is required")
    if body.get("grid") is not None and not isinstance(body["grid"], str):
        raise ApiProblem(400, "grid is a unit code (text)")
    loc = body.get("location") or {}
    if not isinstance(loc, dict):
        raise ApiProblem(400, "location is an object: {lat, lng, address}")
    try:
        grid = body.get("grid") or intake.locate(services(), loc.get("lat"), loc.get("lng"), c.path)
    except intake.OutsideGrids as e:
        raise ApiProblem(422, str(e)) from None
    _path_for(grid)
    data = {k: body[k] for k in ("category", "description", "location", "parties", "photos") if k in body}
    caller = body.get("on_behalf_of")
    if caller is not None and not isinstance(caller, dict):
        raise ApiProblem(400, "on_behalf_of is an object: {name, phone}")
    case = intake.report_external(services(), data, grid_code=grid, source=body.get("source") or "api",
                                  client_id=c.id, on_behalf_of=caller)
    return json_response({"id": case.id, "case_no": case.case_no, "grid": grid}, 201, etag=False)


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(rest: str):
    raise ApiProblem(404, "no such API resource")


def register(app: Flask) -> None:
    from .common import allow_public

    app.register_blueprint(bp)
    allow_public(app, "api")
