"""Open311 GeoReport v2 (blueprint `open311`, /open311/v2/): discovery, services (the case
categories of the active report form) and their attribute definitions, requests (GET list with
the spec's filters, GET one, POST a new one with an API client's key). JSON or XML by extension.

Status: open / closed; agency_responsible = the current unit's name; expected_datetime = the
current due time. A POSTed request becomes a case (source open311) in the grid its lat/long
falls in, with that grid's grid worker as its reporter and the client as the actor who took it
(grid.cases.intake).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

from flask import Blueprint, Flask, Response, g, request, url_for
from lxml import etree

from engine import clock
from engine.errors import InvalidData, NotFound
from grid.cases import api_reads as reads
from grid.cases import intake
from grid.errors import Forbidden
from grid.org import api_clients

from ..api import query_time
from ..api.common import ApiProblem, audit_call, services

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")
FORMATS = ("json", "xml")
MAX_DAYS = 90
STANDARD = {"category", "description", "location", "photos", "settled_on_spot", "spot_result"}


# ---- output ----------------------------------------------------------------------------------
def _xml(root: str, item: str | None, data) -> bytes:
    def put(parent, key: str, value) -> None:
        el = etree.SubElement(parent, key)
        if isinstance(value, dict):
            for k, v in value.items():
                put(el, k, v)
        elif isinstance(value, list):
            child = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}
            for v in value:
                put(el, child.get(key, "item"), v)
        elif value is not None:
            el.text = str(value).lower() if isinstance(value, bool) else str(value)

    top = etree.Element(root)
    for entry in (data if item else [data]):
        if item:
            put(top, item, entry)
        else:
            for k, v in entry.items():
                put(top, k, v)
    return etree.tostring(top, xml_declaration=True, encoding="utf-8")


def _out(fmt: str, root: str, item: str | None, data, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(_xml(root, item, data), status=status, mimetype="text/xml")
    return Response(json.dumps(data, ensure_ascii=False), status=status, mimetype="application/json")


def _errors(fmt: str, status: int, description: str) -> Response:
    data = [{"code": status, "description": description}]
    resp = _out(fmt, "errors", "error", data, status)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ApiProblem(404, "format must be json or xml")
    return fmt


@bp.errorhandler(ApiProblem)
def _problem(e: ApiProblem):
    fmt = g.get("o311_fmt", "json")
    resp = _errors(fmt, e.status, e.detail)
    for k, v in e.headers.items():
        resp.headers[k] = v
    return resp


@bp.errorhandler(InvalidData)
def _invalid(e: InvalidData):
    msgs = "; ".join(f"{x.get('path')}: {x.get('message')}" for x in e.errors) or str(e)
    return _errors(g.get("o311_fmt", "json"), 400, msgs)


@bp.errorhandler(NotFound)
def _missing(e):
    return _errors(g.get("o311_fmt", "json"), 404, str(e))


@bp.errorhandler(Forbidden)
def _forbidden(e):
    return _errors(g.get("o311_fmt", "json"), 403, str(e))


bp.after_request(audit_call)


@bp.url_value_preprocessor
def _remember_format(endpoint, values):
    if values and "fmt" in values:
        g.o311_fmt = values["fmt"] if values["fmt"] in FORMATS else "json"


def _jurisdiction() -> str:
    """The subtree named by jurisdiction_id (a unit code; default: the whole city)."""
    jid = request.values.get("jurisdiction_id")
    if not jid:
        return ""
    try:
        return reads.unit_path(services(), jid)
    except NotFound:
        raise ApiProblem(404, f"unknown jurisdiction_id {jid}") from None


def _local(v: str | None) -> str | None:
    if not v:
        return None
    return clock.local(datetime.fromisoformat(v.replace("Z", "+00:00"))).isoformat()


# ---- discovery and services ------------------------------------------------------------------
@bp.get("/discovery.<fmt>")
def discovery(fmt: str):
    fmt = _fmt(fmt)
    base = url_for("open311.services_list", fmt="json", _external=True).rsplit("/", 1)[0] + "/"
    data = {"changeset": "2026-01-01T00:00:00+08:00", "contact": "the city's grid-governance centre",
            "key_service": "API keys are issued by the city's administrators (gridflow api-client create)",
            "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": base,
                           "changeset": "2026-01-01T00:00:00+08:00", "type": "production",
                           "formats": ["text/xml", "application/json"]}]}
    return _out(fmt, "discovery", None, data)


def _categories() -> list[tuple[str, str, str]]:
    form = intake.report_form(services())
    prop = (form.get("properties") or {}).get("category") or {}
    codes = list(prop.get("enum") or [])
    titles = prop.get("x-enum-titles") or {}
    zh, en = titles.get("zh") or codes, titles.get("en") or codes
    return [(c, zh[i] if i < len(zh) else c, en[i] if i < len(en) else c) for i, c in enumerate(codes)]


def _lang_en() -> bool:
    return (request.values.get("locale") or request.accept_languages.best_match(["zh", "en"]) or "zh").startswith("en")


@bp.get("/services.<fmt>")
def services_list(fmt: str):
    fmt = _fmt(fmt)
    en = _lang_en()
    data = [{"service_code": code, "service_name": name_en if en else name_zh,
             "description": f"{name_zh} / {name_en}", "metadata": True, "type": "realtime",
             "keywords": "dispute,矛盾纠纷", "group": "disputes"} for code, name_zh, name_en in _categories()]
    return _out(fmt, "services", "service", data)


def _attributes(form: dict) -> list[dict]:
    """Open311 attributes from the report form's properties that have no standard field."""
    props = form.get("properties") or {}
    required = set(form.get("required") or [])
    order = form.get("x-order") or list(props)
    out = []
    for name in order:
        if name in STANDARD or name not in props:
            continue
        p = props[name]
        title = p.get("title") or name
        desc = (p.get("x-title") or {}).get("en") or title
        kind = p.get("type")
        if name == "parties":
            datatype, values, desc = "text", None, "Parties (people or organisations), one per line"
        elif "enum" in p:
            datatype = "singlevaluelist"
            names = ((p.get("x-enum-titles") or {}).get("zh")) or p["enum"]
            values = [{"key": k, "name": names[i] if i < len(names) else k} for i, k in enumerate(p["enum"])]
        elif kind == "boolean":
            datatype, values = "singlevaluelist", [{"key": "true", "name": "是"}, {"key": "false", "name": "否"}]
        elif kind in ("number", "integer"):
            datatype, values = "number", None
        elif kind == "string" and p.get("format") == "date-time":
            datatype, values = "datetime", None
        elif kind == "string":
            datatype, values = ("text" if p.get("x-widget") == "textarea" else "string"), None
        else:
            continue
        attr = {"variable": True, "code": name, "datatype": datatype, "required": name in required,
                "datatype_description": desc, "order": len(out) + 1, "description": title}
        if values:
            attr["values"] = values
        out.append(attr)
    return out


@bp.get("/services/<code>.<fmt>")
def service_definition(code: str, fmt: str):
    fmt = _fmt(fmt)
    if code not in {c for c, _z, _e in _categories()}:
        raise ApiProblem(404, f"no service with code {code}")
    data = {"service_code": code, "attributes": _attributes(intake.report_form(services()))}
    return _out(fmt, "service_definition", None, data)


# ---- requests --------------------------------------------------------------------------------
def _names() -> dict[str, str]:
    return {c: z for c, z, _e in _categories()}


def _request_row(d: dict, names: dict[str, str], units: dict[str, str], personal: bool) -> dict:
    closed = d["status"] != "open"
    notes = (f"{d.get('result') or d['status']}" if closed else
             f"在办：{d.get('current_level') or ''} {units.get(d.get('current_unit') or '', '')}".strip())
    loc = d.get("location") or {}
    return {"service_request_id": d["case_no"], "status": "closed" if closed else "open", "status_notes": notes,
            "service_name": names.get(d["category"], d["category"]), "service_code": d["category"],
            "description": d.get("description") if personal else None,
            "agency_responsible": units.get(d.get("current_unit") or d["grid"], ""),
            "service_notice": None, "requested_datetime": _local(d["reported_at"]),
            "updated_datetime": _local(d["updated_at"]), "expected_datetime": _local(d.get("due_at")),
            "address": loc.get("text") if personal else None, "address_id": None, "zipcode": None,
            "lat": loc.get("lat") if personal else None, "long": loc.get("lng") if personal else None,
            "media_url": None}


def _optional_caller() -> api_clients.Caller | None:
    key = request.values.get("api_key")
    if not key:
        return None
    from ..api.common import authenticate

    return authenticate(key)


def _unit_names(rows: list[dict]) -> dict[str, str]:
    codes = {r.get("current_unit") for r in rows if r.get("current_unit")} | {r["grid"] for r in rows}
    out = {}
    for code in codes:
        try:
            out[code] = reads.unit(services(), "", code)["name"]
        except NotFound:
            pass
    return out


def _date(name: str) -> datetime | None:
    return query_time(name, clock.SHANGHAI, "a W3C date-time")  # a time without an offset is Beijing time


@bp.get("/requests.<fmt>")
def requests_list(fmt: str):
    fmt = _fmt(fmt)
    caller = _optional_caller()
    path = _jurisdiction()
    if caller is not None and not path.startswith(caller.path):
        path = caller.path if caller.path.startswith(path) else None
        if path is None:
            raise ApiProblem(403, "this jurisdiction is outside the client's")
    personal = bool(caller and caller.has("personal:read"))
    ids = [x for x in (request.args.get("service_request_id") or "").split(",") if x]
    if ids:
        rows = []
        for i in ids:
            try:
                rows.append(reads.case_detail(services(), path, i, personal))
            except NotFound:
                continue
    else:
        end = _date("end_date") or clock.now()
        start = _date("start_date") or end - timedelta(days=MAX_DAYS)
        if end - start > timedelta(days=MAX_DAYS):
            raise ApiProblem(400, f"start_date and end_date may be at most {MAX_DAYS} days apart")
        status = request.args.get("status")
        mapped = None
        if status:
            wanted = set(status.split(","))
            if not wanted <= {"open", "closed"}:
                raise ApiProblem(400, "status is open or closed")
            mapped = ",".join((["open"] if "open" in wanted else []) +
                              (["archived", "cancelled", "failed"] if "closed" in wanted else []))
        rows = reads.list_cases(services(), path, limit=200, personal=personal, status=mapped,
                                category=request.args.get("service_code"), start=start, end=end)["items"]
    names, units = _names(), _unit_names(rows)
    return _out(fmt, "service_requests", "request", [_request_row(r, names, units, personal) for r in rows])


@bp.get("/requests/<rid>.<fmt>")
@bp.get("/request/<rid>.<fmt>")
def request_one(rid: str, fmt: str):
    fmt = _fmt(fmt)
    caller = _optional_caller()
    path = caller.path if caller else _jurisdiction()
    personal = bool(caller and caller.has("personal:read"))
    d = reads.case_detail(services(), path, rid, personal)
    return _out(fmt, "service_requests", "request", [_request_row(d, _names(), _unit_names([d]), personal)])


@bp.post("/requests.<fmt>")
def request_create(fmt: str):
    fmt = _fmt(fmt)
    caller = _optional_caller()
    if caller is None:
        raise ApiProblem(401, "api_key is required to post a request")
    if not caller.has("reports:create"):
        raise ApiProblem(403, "this api_key may not create requests")
    path = _jurisdiction() or caller.path
    if not path.startswith(caller.path):
        raise ApiProblem(403, "this jurisdiction is outside the client's")
    v = request.values
    code = v.get("service_code")
    if code not in _names():
        raise ApiProblem(400, "service_code is missing or unknown")
    lat, lng, address = v.get("lat"), v.get("long"), v.get("address_string")
    try:
        if lat and lng:
            grid = intake.locate(services(), float(lat), float(lng), path)
        elif address:
            grid = intake.locate_address(services(), address, path)
        else:
            raise ApiProblem(400, "lat/long or address_string is required")
    except ValueError as e:  # OutsideGrids, or a lat/long that is not a number
        raise ApiProblem(400, str(e)) from None
    loc = {"text": address or f"{lat},{lng}"}
    if lat and lng:
        loc.update(lat=float(lat), lng=float(lng))
    data: dict = {"category": code, "description": v.get("description") or "", "location": loc}
    if v.get("media_url"):
        data["photos"] = [v["media_url"]]
    parties = v.get("attribute[parties]")
    if parties:
        data["parties"] = [{"name": n.strip()} for n in parties.splitlines() if n.strip()]
    c = intake.report_external(services(), data, grid_code=grid, source="open311", client_id=caller.id)
    return _out(fmt, "service_requests", "request",
                [{"service_request_id": c.case_no, "service_notice": "已受理，按网格分派", "account_id": None}])


@bp.get("/tokens/<token>.<fmt>")
def token(token: str, fmt: str):
    fmt = _fmt(fmt)
    raise ApiProblem(404, "requests get their id at once; tokens are not used")


def register(app: Flask) -> None:
    from ..api.common import allow_public

    app.register_blueprint(bp)
    allow_public(app, "open311")
