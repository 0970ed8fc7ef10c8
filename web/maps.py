"""Maps: the open-cases map of a dispatcher or supervisor (GET /map), a case's map page, and the
GeoJSON the map widgets fetch (report page, case page, dashboard choropleth).

Thin: every read is a `grid.cases.case_map` function, which checks the jurisdiction. Leaflet and
markercluster are served from web/static/vendor/leaflet/ (copied by scripts/setup, never a CDN);
web/static/js/map.js draws. The tile layer comes from GRIDFLOW_MAP_TILES (+ _ATTRIBUTION, _CRS);
without it the maps draw outlines and pins on a plain background (offline, in tests). A
configured tile origin is added to the page's CSP `img-src`.
"""
from __future__ import annotations

from datetime import date
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, jsonify, render_template, request
from flask_login import current_user

from grid.cases import case_map

from .ui import services

bp = Blueprint("maps", __name__)


def _json(data: dict):
    resp = jsonify(data)
    resp.headers["Cache-Control"] = "no-store"  # personal data may be in the case numbers and places
    return resp


def _unit_arg() -> str | None:
    u = request.args.get("unit") or None
    if u is not None and (len(u) > 20 or not u.isascii() or not u.isalnum()):
        abort(400)
    return u


@bp.get("/map")
def open_cases():
    """The map of open cases in the person's jurisdiction (or under ?unit=), by state."""
    unit = _unit_arg()
    return render_template("maps/open_cases.html", unit=unit,
                           src=_url("maps.cases_json", unit=unit))


@bp.get("/map/cases.json")
def cases_json():
    return _json(case_map.open_cases_map(services(), current_user.id, _unit_arg()))


@bp.get("/map/case/<int:case_id>")
def case_page(case_id: int):
    """One case on a full map (linked from the case page's map)."""
    data = case_map.case_map(services(), current_user.id, case_id)  # NotFound outside the jurisdiction
    no = next((f["properties"]["case_no"] for f in data["features"] if f["properties"]["kind"] == "case"), None)
    return render_template("maps/case_page.html", case_id=case_id, case_no=no)


@bp.get("/map/case/<int:case_id>.json")
def case_json(case_id: int):
    return _json(case_map.case_map(services(), current_user.id, case_id))


@bp.get("/map/mine.json")
def mine_json():
    """The grid worker's own grid(s), for the report page's location widget."""
    return _json(case_map.report_area(services(), current_user.id))


@bp.get("/map/units.json")
def units_json():
    """Outlines of a unit's children (?unit=), or of the person's own units."""
    return _json(case_map.unit_shapes(services(), current_user.id, _unit_arg()))


@bp.get("/map/choropleth/<unit>.json")
def choropleth_json(unit: str):
    """Child units with every indicator's value over ?from=&to= (ISO dates, at most ten years)."""
    try:
        start, end = date.fromisoformat(request.args["from"]), date.fromisoformat(request.args["to"])
    except (KeyError, ValueError):
        abort(400)
    if end < start or (end - start).days > 3660 or len(unit) > 20 or not unit.isalnum():
        abort(400)
    return _json(case_map.choropleth(services(), current_user.id, unit, start, end))


def _url(endpoint: str, **values) -> str:
    from flask import url_for

    return url_for(endpoint, **{k: v for k, v in values.items() if v is not None})


def map_config() -> dict:
    """What every map element carries as data attributes: the tile layer (or none)."""
    st = services().settings
    return {"tiles": st.map_tiles or "", "attribution": st.map_attribution or "", "crs": st.map_crs}


def _tile_origins(template: str | None) -> list[str]:
    """The origins a tile template loads from ({s} subdomains expanded to a wildcard)."""
    if not template:
        return []
    parts = urlsplit(template.replace("{s}", "sub"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return []
    host = parts.netloc
    if "{s}" in template:
        host = "*." + host.split(".", 1)[1] if "." in host else host
    return [f"{parts.scheme}://{host}"]


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.context_processor(lambda: {"map_config": map_config})
    origins = _tile_origins(getattr(app.extensions["gridflow"].settings, "map_tiles", None))
    if origins:
        extra = " ".join(origins)

        def _tiles_csp(resp):
            csp = resp.headers.get("Content-Security-Policy")
            if csp and "img-src 'self'" in csp and extra not in csp:
                resp.headers["Content-Security-Policy"] = csp.replace("img-src 'self'", f"img-src 'self' {extra}", 1)
            return resp

        # after_request runs in reverse order: first in the list = last to run, after the headers are set
        app.after_request_funcs.setdefault(None, []).insert(0, _tiles_csp)
