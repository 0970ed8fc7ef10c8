"""The report POST checks that the point lies in the reporter's grid (grid.cases.report_location),
over HTTP with the Flask test client, on both databases.

- far outside her grid: 422, the location field says so (the grid's name, the distance), and
  nothing is stored (no case, instance, attachment; the form's one-time token is still unused);
- just over the edge (within the tolerance, a phone's fix): accepted;
- in another of her own grids: the error names that grid, and choosing it is accepted;
- a typed address without a point: nothing to check, accepted.
The edge is found with shapely on the stored outline here, not with the code under test.
"""
from __future__ import annotations

import math
import re
from datetime import date

import pytest
from shapely.geometry import Point, shape
from sqlalchemy import func, select

from engine.errors import InvalidData
from engine.models import Instance
from grid.cases import report_location
from grid.cases.models import Attachment, DisputeCase
from grid.org import boundaries
from grid.org.models import OrgUnit, StaffRole
from tests.web_helpers import csrf, login, staff_id, upload

SEED_GRID = "420602003005015"
SEED = (32.0213, 112.1432)
FORM = {"grid": SEED_GRID, "category": "neighbour", "description": "楼道堆物引发邻里纠纷，双方争执。",
        "location.text": "襄城区檀溪社区南山家属院", "parties.0.name": "", "parties.0.phone": ""}
M_PER_DEG = 111_195.0
SUBMIT = re.compile(r'name="submit_token" value="([0-9a-f]{32})"')


def _counts(svc) -> tuple[int, int, int]:
    with svc.db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (DisputeCase, Instance, Attachment))


def _grid_shape(svc, code: str = SEED_GRID):
    with svc.db.read() as s:
        g = boundaries.geometry_of(s, code)
    assert g is not None, "the demo city has grid outlines"
    return shape(g)


def _east_of_edge(svc, metres: float) -> tuple[float, float]:
    """A point `metres` east of where a ray east from the seed point leaves the seed grid."""
    g = _grid_shape(svc)
    lat, lng = SEED
    assert g.covers(Point(lng, lat))
    deg_m = 1 / (M_PER_DEG * math.cos(math.radians(lat)))  # degrees of longitude per metre here
    lo, hi = lng, 115.0  # east of the city (the small demo city's grids are large)
    assert not g.covers(Point(hi, lat))
    for _ in range(60):  # bisect to the edge
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if g.covers(Point(mid, lat)) else (lo, mid)
    return lat, hi + metres * deg_m


def _post(client, lat=None, lng=None, **extra):
    page = client.get("/report" + (f"?grid={extra['grid']}" if "grid" in extra else "")).get_data(as_text=True)
    token = SUBMIT.search(page).group(1)
    data = {**FORM, "csrf_token": csrf(client, "/report"), "submit_token": token, **extra}
    if lat is not None:
        data.update({"location.lat": repr(lat), "location.lng": repr(lng)})
    return client.post("/report", data=data, content_type="multipart/form-data"), token, data


def _location_error(html: str) -> str:
    m = re.search(r'<div id="f-location-err">(.*?)</div>', html, re.S)
    assert m, html[:3000]
    return re.sub(r"<[^>]+>", "", m.group(1))


def test_a_point_far_outside_her_grid_is_refused_and_nothing_is_stored(app, svc):
    client = login(app, "jiangranran")
    with svc.db.read() as s:  # the point of a grid in 樊城区, another county
        far = s.execute(select(OrgUnit.lat, OrgUnit.lng).where(OrgUnit.level == "grid",
                                                               OrgUnit.code.like("420606%")).limit(1)).one()
    assert not _grid_shape(svc).covers(Point(far.lng, far.lat))
    before = _counts(svc)
    r, token, data = _post(client, far.lat, far.lng, photos=[upload("现场.png")])
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    text = _location_error(html)
    assert "第十五网格" in text and re.search(r"\d{3,} ?(m\b|米)", text), text
    assert _counts(svc) == before  # no case, no instance, no stored photo
    assert f'value="{token}"' in html  # the same one-time token is offered again: it was not used
    with svc.db.read() as s:
        assert s.scalar(select(func.count()).select_from(DisputeCase)
                        .where(DisputeCase.submit_token == token)) == 0
    # the worker moves the pin into her grid and sends the same form again: now it is reported
    fixed = {**data, "location.lat": repr(SEED[0]), "location.lng": repr(SEED[1]),
             "csrf_token": csrf(client, "/report"), "photos": [upload("现场.png")]}
    r = client.post("/report", data=fixed, content_type="multipart/form-data")
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    with svc.db.read() as s:
        c = s.scalar(select(DisputeCase).where(DisputeCase.submit_token == token))
    assert c.grid_code == SEED_GRID and (c.lat, c.lng) == SEED


def test_just_over_the_edge_is_within_the_tolerance(app, svc):
    client = login(app, "jiangranran")
    near = _east_of_edge(svc, report_location.TOLERANCE_M / 2)
    assert not _grid_shape(svc).covers(Point(near[1], near[0]))
    r, _token, _data = _post(client, *near)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    beyond = _east_of_edge(svc, report_location.TOLERANCE_M * 5)
    before = _counts(svc)
    r, _token, _data = _post(client, *beyond)
    assert r.status_code == 422 and "第十五网格" in _location_error(r.get_data(as_text=True))
    assert _counts(svc) == before


def test_a_point_in_another_of_her_grids_names_it(app, svc):
    me = staff_id(svc, "jiangranran")
    with svc.db.read() as s:  # a neighbouring grid of the same village
        other = s.execute(select(OrgUnit.code, OrgUnit.name, OrgUnit.lat, OrgUnit.lng).where(
            OrgUnit.parent_code == SEED_GRID[:12], OrgUnit.level == "grid", OrgUnit.code != SEED_GRID)
            .order_by(OrgUnit.code).limit(1)).one()
    with svc.db.write() as s:
        s.add(StaffRole(staff_id=me, unit_code=other.code, role="grid_worker", active=True, since=date(2026, 1, 1)))
    assert _grid_shape(svc, other.code).covers(Point(other.lng, other.lat))
    client = login(app, "jiangranran")
    before = _counts(svc)
    r, _token, _data = _post(client, other.lat, other.lng)
    assert r.status_code == 422
    text = _location_error(r.get_data(as_text=True))
    assert other.name in text and "第十五网格" in text, text
    assert _counts(svc) == before
    r, _token, _data = _post(client, other.lat, other.lng, grid=other.code)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    case_id = int(r.headers["Location"].rsplit("/", 1)[1])
    with svc.db.read() as s:
        assert s.get(DisputeCase, case_id).grid_code == other.code


def test_a_typed_address_without_a_point_is_not_checked(app, svc):
    r, _token, _data = _post(login(app, "jiangranran"))
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]


def test_the_service_level_check_raises_on_the_location_field(svc):
    """`require_inside` is the one-line call for the report service's write transaction."""
    me = staff_id(svc, "jiangranran")
    with svc.db.read() as s:
        assert report_location.require_inside(s, me, SEED_GRID, {"location": {"text": "x", "lat": SEED[0],
                                                                              "lng": SEED[1]}}) is None
        assert report_location.outside(s, me, SEED_GRID, {"location": {"text": "x"}}) is None
        with pytest.raises(InvalidData) as e:
            report_location.require_inside(s, me, SEED_GRID, {"location": {"text": "x", "lat": 32.3, "lng": 112.3}})
    (err,) = e.value.errors
    assert err["path"] == "location" and err["validator"] == "inside_grid" and err["value"] > 1000
