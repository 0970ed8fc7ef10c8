"""Maps and hotline intake over the app: GeoJSON by jurisdiction (a grid worker gets her grid, a
county supervisor the county, nothing outside), the open-cases map's states, the case map, the
choropleth, the operator's intake page (routed by point, address or chosen grid; phone sealed)."""
from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select

from grid import crypto
from grid.cases.models import DisputeCase
from grid.org import boundaries, demo
from tests.web_helpers import csrf, login, make_app, report_case

SEED_LAT, SEED_LNG = boundaries.SEED_POINT


def _units(fc: dict) -> set[str]:
    return {f["properties"]["code"] for f in fc["features"] if f["properties"]["kind"] == "unit"}


def test_geojson_follows_the_jurisdiction(app, svc):
    worker = login(app, "jiangranran")
    mine = worker.get("/map/mine.json").get_json()
    assert _units(mine) == {demo.SEED_GRID}
    g = mine["features"][0]["geometry"]
    assert g["type"] == "Polygon" and boundaries.contains(g, SEED_LAT, SEED_LNG)
    assert _units(worker.get("/map/units.json").get_json()) == {demo.SEED_GRID}
    assert worker.get(f"/map/units.json?unit={demo.SEED_COUNTY}").status_code == 403
    assert worker.get("/map/cases.json?unit=420606000000").status_code == 403

    sup = login(app, f"sup.{demo.SEED_COUNTY}")
    assert _units(sup.get("/map/units.json").get_json()) == {demo.SEED_COUNTY}
    kids = _units(sup.get(f"/map/units.json?unit={demo.SEED_COUNTY}").get_json())
    assert demo.SEED_TOWNSHIP in kids and all(k.startswith("420602") for k in kids)
    assert sup.get("/map/units.json?unit=420606000000").status_code == 403  # 樊城区: another county
    assert sup.get("/map/units.json?unit=../x").status_code == 400
    assert sup.get("/map/mine.json").status_code == 403  # not a grid worker


def test_open_cases_map_states_and_case_map(app, svc):
    c = report_case(svc)
    sup = login(app, f"sup.{demo.SEED_COUNTY}")
    fc = sup.get("/map/cases.json").get_json()
    pins = [f for f in fc["features"] if f["properties"]["kind"] == "case"]
    assert [p["properties"]["case_no"] for p in pins] == [c.case_no]
    assert pins[0]["properties"]["state"] == "normal" and pins[0]["geometry"]["coordinates"] == [SEED_LNG, SEED_LAT]
    assert fc["counts"]["normal"] == 1 and fc["truncated"] is False
    other = login(app, "sup.420606000000")  # 樊城区's supervisor sees none of it
    assert [f for f in other.get("/map/cases.json").get_json()["features"] if f["properties"]["kind"] == "case"] == []
    assert other.get(f"/map/case/{c.id}.json").status_code == 404

    case = sup.get(f"/map/case/{c.id}.json").get_json()
    kinds = {f["properties"]["kind"]: f for f in case["features"]}
    assert kinds["unit"]["properties"]["code"] == demo.SEED_GRID and kinds["case"]["properties"]["inside"] is True
    html = sup.get("/map").get_data(as_text=True)
    assert 'data-map="cases"' in html and "vendor/leaflet/leaflet.markercluster.js" in html and "//unpkg" not in html
    assert 'href="/map"' in html, "the nav links the map for a supervisor"
    assert 'href="/map"' not in login(app, "jiangranran").get("/").get_data(as_text=True)
    assert sup.get(f"/map/case/{c.id}").status_code == 200


def test_overdue_cases_are_red_on_the_map(app, svc, fake_clock):
    from datetime import timedelta

    c = report_case(svc)
    fake_clock.advance(timedelta(days=40))
    sup = login(app, f"sup.{demo.SEED_COUNTY}")
    pins = {f["properties"]["case_no"]: f["properties"] for f in sup.get("/map/cases.json").get_json()["features"]
            if f["properties"]["kind"] == "case"}
    assert pins[c.case_no]["state"] == "overdue"


def test_report_page_has_the_map_widget(app):
    html = login(app, "jiangranran").get("/report").get_data(as_text=True)
    assert 'data-map="report"' in html and 'data-src="/map/mine.json"' in html and "data-map-warning" in html
    assert "vendor/leaflet/leaflet.js" in html and 'data-tiles=""' in html


def test_choropleth_values_by_unit(app, svc):
    report_case(svc)
    sup = login(app, f"sup.{demo.SEED_COUNTY}")
    today = date.today()
    fc = sup.get(f"/map/choropleth/{demo.SEED_COUNTY}.json?from={today.replace(day=1)}&to={today}").get_json()
    codes = _units(fc)
    assert demo.SEED_TOWNSHIP in codes
    f = next(f for f in fc["features"] if f["properties"]["code"] == demo.SEED_TOWNSHIP)
    assert f["geometry"]["type"] == "Polygon" and "closure_rate" in f["properties"]["values"]
    assert sup.get("/map/choropleth/420606000000.json?from=2026-01-01&to=2026-01-31").status_code == 403
    assert sup.get(f"/map/choropleth/{demo.SEED_COUNTY}.json?from=x&to=y").status_code == 400
    html = sup.get(f"/dashboard/{demo.SEED_COUNTY}").get_data(as_text=True)
    assert 'data-map="choropleth"' in html


def test_tile_layer_configured_reaches_csp(svc, tmp_path, monkeypatch):
    svc.settings.map_tiles = "https://t{s}.tianditu.gov.cn/vec_w/wmts?tk=KEY&x={x}&y={y}&l={z}"
    try:
        app = make_app(svc, tmp_path)
        r = login(app, "jiangranran").get("/report")
        assert "img-src 'self' https://*.tianditu.gov.cn" in r.headers["Content-Security-Policy"]
        assert 'data-tiles="https://t{s}.tianditu.gov.cn' in r.get_data(as_text=True)
    finally:
        svc.settings.map_tiles = None


# ---- hotline intake ----------------------------------------------------------------------------
def _post(client, **form):
    base = {"csrf_token": csrf(client, "/intake"), "source": "hotline", "caller_name": "张先生",
            "caller_phone": "138 0000 1234", "category": "neighbour", "description": "楼上漏水，邻里争执。",
            "location_text": "檀溪路", "lat": "", "lng": "", "grid": ""}
    return client.post("/intake", data={**base, **form})


def test_operator_takes_a_call_routed_by_point(app, svc):
    op = login(app, f"op.{demo.SEED_COUNTY}")
    page = op.get("/intake")
    assert page.status_code == 200 and 'data-map="pick"' in page.get_data(as_text=True)
    r = _post(op, lat=str(SEED_LAT), lng=str(SEED_LNG))
    html = r.get_data(as_text=True)
    assert r.status_code == 201, html
    assert "138****1234" in html and "13800001234" not in html
    with svc.db.read() as s:
        c = s.scalar(select(DisputeCase).order_by(DisputeCase.id.desc()).limit(1))
        inst_state = s.execute(select(__import__("engine.models", fromlist=["Instance"]).Instance.state_json)
                               .where(__import__("engine.models", fromlist=["Instance"]).Instance.id == c.instance_id)
                               ).scalar()
    assert (c.grid_code, c.source) == (demo.SEED_GRID, "hotline")
    assert "13800001234" not in json.dumps(inst_state, ensure_ascii=False), "the phone is sealed in the process data"
    from grid.cases import intake

    with svc.db.read() as s:
        from engine.models import WorkItem

        guid = s.scalar(select(WorkItem.task_guid).where(WorkItem.instance_id == c.instance_id,
                                                         WorkItem.state == "open").limit(1))
    caller = svc.runtime.task_data(c.instance_id, guid)["on_behalf_of"]
    assert caller["name"] == "张先生" and crypto.is_sealed(caller["phone"])
    assert intake.caller_phone(caller["phone"]) == "13800001234"


def test_operator_intake_by_address_and_by_grid_and_bad_input(app, svc):
    op = login(app, f"op.{demo.CITY_CODE}")
    r = _post(op, source="window", location_text="襄城区檀溪社区门口")
    assert r.status_code == 201, r.get_data(as_text=True)
    r = _post(op, grid=demo.SEED_GRID, location_text="")
    assert r.status_code == 201
    with svc.db.read() as s:
        rows = list(s.execute(select(DisputeCase.source, DisputeCase.grid_code).order_by(DisputeCase.id)))
    assert rows[-2][0] == "window" and rows[-2][1].startswith(demo.SEED_VILLAGE) and rows[-1] == ("hotline", demo.SEED_GRID)
    before = len(rows)
    for bad in ({"caller_phone": "abc"}, {"caller_name": ""}, {"lat": "32.02"}, {"lat": "x", "lng": "y"},
                {"category": "nonsense"}, {"description": ""}, {"lat": "40.0", "lng": "116.4"},
                {"grid": "9999"}, {"source": "grid_worker"}, {"location_text": "无名之地"}):
        r = _post(op, **bad)
        assert r.status_code == 422, (bad, r.status_code)
    county_op = login(app, "op.420606000000")  # 樊城区's operator: the seed grid is not hers
    assert _post(county_op, grid=demo.SEED_GRID).status_code == 403
    assert _post(county_op, lat=str(SEED_LAT), lng=str(SEED_LNG)).status_code == 422
    with svc.db.read() as s:
        assert len(list(s.execute(select(DisputeCase.id)))) == before, "nothing was created"
    assert login(app, "jiangranran").get("/intake").status_code == 403


def test_a_map_of_many_cases_groups_them_by_child_unit(app, svc, fake_clock, monkeypatch):
    """Past GROUP_AT open cases a unit's map sends one group per child unit (its count and late
    counts, at the child's point) instead of a pin per case: its size stays that of the children."""
    from datetime import timedelta

    from grid.cases import case_map

    made = [report_case(svc) for _ in range(3)]
    fake_clock.advance(timedelta(days=40))  # all overdue now
    fresh = report_case(svc)
    sup = login(app, f"sup.{demo.SEED_COUNTY}")
    monkeypatch.setattr(case_map, "GROUP_AT", 3)
    fc = sup.get("/map/cases.json").get_json()
    assert fc["grouped"] is True and [f for f in fc["features"] if f["properties"]["kind"] == "case"] == []
    groups = [f["properties"] for f in fc["features"] if f["properties"]["kind"] == "group"]
    assert [(g["code"], g["count"]) for g in groups] == [(demo.SEED_TOWNSHIP, 4)]
    assert groups[0]["counts"] == {"normal": 1, "warned": 0, "overdue": 3, "supervised": 0}
    assert groups[0]["state"] == "overdue" and fc["counts"]["overdue"] == 3 and fc["counts"]["normal"] == 1
    # the township's own map is still grouped (by village) past the threshold; below it, pins
    monkeypatch.setattr(case_map, "GROUP_AT", 10)
    pins = [f["properties"]["case_no"] for f in sup.get(f"/map/cases.json?unit={demo.SEED_TOWNSHIP}").get_json()["features"]
            if f["properties"]["kind"] == "case"]
    assert sorted(pins) == sorted(c.case_no for c in [*made, fresh])
    html = sup.get("/map").get_data(as_text=True)
    assert 'data-unit-url="/map?unit="' in html
