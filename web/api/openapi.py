"""The OpenAPI 3.1 document of /api/v1 and a self-contained reference page (no CDN)."""
from __future__ import annotations

from html import escape

from grid.org.api_clients import SCOPES


def _list(item: str) -> dict:
    return {"type": "object", "required": ["items"], "properties": {
        "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
        "next_cursor": {"type": ["string", "integer", "null"]}, "has_more": {"type": "boolean"}}}


def _op(summary: str, scope: str | None, params: list[str] = (), ok: dict | None = None, *,
        errors: tuple = (400, 401, 403, 429)) -> dict:
    op = {"summary": summary, "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in params],
          "responses": {"200": {"description": "OK", "headers": {"ETag": {"schema": {"type": "string"}}},
                                "content": {"application/json": {"schema": ok or {"type": "object"}}}},
                        "304": {"description": "Not modified (If-None-Match matched the ETag)"},
                        **{str(c): {"$ref": "#/components/responses/Problem"} for c in errors}}}
    if scope:
        op["x-required-scope"] = scope
    return op


def document() -> dict:
    ref = {"$ref": "#/components/schemas/Case"}
    p = {
        "/cases": {"get": _op("Cases in the client's jurisdiction, oldest change first (incremental sync)",
                              "cases:read", ["updated_since", "cursor", "limit", "unit", "status", "category"],
                              _list("Case"))},
        "/cases/{key}": {"get": _op("One case: summary, deadlines, open tasks, records, timeline", "cases:read",
                                    ["key"], ref, errors=(401, 403, 404, 429))},
        "/cases/{key}/records": {"get": _op("The case's countable records", "cases:read", ["key"], _list("Record"),
                                            errors=(401, 403, 404, 429))},
        "/cases/{key}/timeline": {"get": _op("The case's timeline", "cases:read", ["key"],
                                             errors=(401, 403, 404, 429))},
        "/units": {"get": _op("Org units with boundaries (GeoJSON)", None, ["unit", "level", "cursor", "limit"],
                              _list("Unit"))},
        "/units/{code}": {"get": _op("One unit with its boundary", None, ["code"], {"$ref": "#/components/schemas/Unit"},
                                     errors=(401, 403, 404, 429))},
        "/staff": {"get": _op("Staff directory: posts by unit (names only with personal:read; never phones)", None,
                              ["unit", "cursor", "limit"])},
        "/indicators": {"get": _op("Indicator values for a unit and period", "indicators:read",
                                   ["unit", "start", "end"])},
        "/registry/aggregates": {"get": _op("Counts per grid: buildings, households, residents",
                                            "registry:aggregates", ["unit"])},
        "/events": {"get": _op("The event feed (CloudEvents 1.0), at least once; dedupe on id", "cases:read",
                               ["after", "limit"], _list("CloudEvent"))},
        "/reports": {"post": {
            "summary": "Create a report (routed to its grid by location)", "x-required-scope": "reports:create",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/ReportIn"}}}},
            "responses": {"201": {"description": "Created"},
                          **{str(c): {"$ref": "#/components/responses/Problem"}
                             for c in (400, 401, 403, 409, 422, 429)}}}},
    }

    def q(name: str, schema: dict, desc: str, where: str = "query") -> dict:
        return {"name": name, "in": where, "required": where == "path", "schema": schema, "description": desc}

    return {
        "openapi": "3.1.0",
        "info": {"title": "Gridflow API", "version": "1.0.0",
                 "description": "Cases, units, indicators and the event feed of a grid-governance platform. "
                                "Authenticate with `Authorization: Bearer gf_<id>_<secret>`. Errors are "
                                "RFC 9457 problem details (application/problem+json)."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": p,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "gf_<id>_<secret>",
                                           "description": "scopes: " + ", ".join(SCOPES)}},
            "parameters": {
                "updated_since": q("updated_since", {"type": "string", "format": "date-time"},
                                   "only cases changed at or after this time"),
                "cursor": q("cursor", {"type": "string"}, "next_cursor of the previous page"),
                "limit": q("limit", {"type": "integer", "minimum": 1, "maximum": 200}, "page size"),
                "unit": q("unit", {"type": "string"}, "narrow to this unit's subtree (inside the jurisdiction)"),
                "level": q("level", {"type": "string", "enum": ["city", "county", "township", "village", "grid"]},
                           "unit level"),
                "status": q("status", {"type": "string"}, "comma-separated: open, archived, failed, cancelled"),
                "category": q("category", {"type": "string"}, "comma-separated case categories"),
                "start": q("start", {"type": "string", "format": "date"}, "first day"),
                "end": q("end", {"type": "string", "format": "date"}, "last day"),
                "after": q("after", {"type": "integer"}, "the last event cursor seen (0 from the start)"),
                "key": q("key", {"type": "string"}, "case id or case number", "path"),
                "code": q("code", {"type": "string"}, "unit code", "path"),
            },
            "responses": {"Problem": {"description": "Problem details (RFC 9457)", "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}},
            "schemas": {
                "Problem": {"type": "object", "properties": {
                    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "detail": {"type": "string"}, "instance": {"type": "string"}, "errors": {"type": "array"}}},
                "Case": {"type": "object", "required": ["id", "case_no", "status", "updated_at"], "properties": {
                    "id": {"type": "integer"}, "case_no": {"type": "string"}, "category": {"type": "string"},
                    "status": {"type": "string"}, "grid": {"type": "string"},
                    "current_level": {"type": ["string", "null"]}, "current_unit": {"type": ["string", "null"]},
                    "due_at": {"type": ["string", "null"], "format": "date-time"},
                    "warn_at": {"type": ["string", "null"], "format": "date-time"},
                    "reported_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"},
                    "source": {"type": "string", "enum": ["grid_worker", "hotline", "window", "open311", "api"]}}},
                "Record": {"type": "object", "properties": {"id": {"type": "integer"}, "kind": {"type": "string"},
                                                            "level": {"type": ["string", "null"]},
                                                            "unit": {"type": ["string", "null"]},
                                                            "at": {"type": "string", "format": "date-time"}}},
                "Unit": {"type": "object", "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                                                          "level": {"type": "string"},
                                                          "parent": {"type": ["string", "null"]},
                                                          "boundary": {"type": ["object", "null"],
                                                                       "description": "GeoJSON, WGS-84"}}},
                "CloudEvent": {"type": "object", "required": ["specversion", "id", "type", "source"],
                               "properties": {"specversion": {"const": "1.0"}, "id": {"type": "string"},
                                              "type": {"type": "string"}, "source": {"type": "string"},
                                              "subject": {"type": "string"}, "time": {"type": "string"},
                                              "data": {"type": "object"}}},
                "ReportIn": {"type": "object", "required": ["category", "description", "location"], "properties": {
                    "category": {"type": "string"}, "description": {"type": "string"},
                    "location": {"type": "object", "properties": {"text": {"type": "string"},
                                                                  "lat": {"type": "number"},
                                                                  "lng": {"type": "number"}}},
                    "grid": {"type": "string", "description": "route to this grid instead of by location"},
                    "source": {"type": "string", "enum": ["api", "hotline", "window", "open311"], "default": "api",
                               "description": "how the report came in; counted per source in the indicators"},
                    "on_behalf_of": {"type": "object", "description": "the caller (personal data)",
                                     "properties": {"name": {"type": "string"}, "phone": {"type": "string"}}}}},
            },
        },
    }


def reference_page(doc: dict) -> str:
    """A plain HTML list of the paths and parameters: readable offline, no script."""
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = ", ".join(p["$ref"].rsplit("/", 1)[-1] for p in op.get("parameters", []))
            scope = op.get("x-required-scope") or ""
            rows.append(f"<tr><td><code>{method.upper()}</code></td><td><code>/api/v1{escape(path)}</code></td>"
                        f"<td>{escape(op['summary'])}</td><td>{escape(scope)}</td><td>{escape(params)}</td></tr>")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Gridflow API</title></head><body>"
            f"<h1>{escape(doc['info']['title'])} {escape(doc['info']['version'])}</h1>"
            f"<p>{escape(doc['info']['description'])}</p><p><a href=\"openapi.json\">openapi.json</a></p>"
            "<table><thead><tr><th>Method</th><th>Path</th><th>What</th><th>Scope</th><th>Parameters</th></tr>"
            "</thead><tbody>" + "".join(rows) + "</tbody></table></body></html>")
