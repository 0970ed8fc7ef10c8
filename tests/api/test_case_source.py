"""Where a case came from (grid worker, hotline, window, Open311, API) is kept on the case and
counted per source in the indicators; the incremental rollup equals a rebuild."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine import clock
from engine.models import WorkItem
from grid.cases import rollup
from grid.cases import service as cases
from grid.cases.indicators import evaluate
from grid.cases.models import DisputeCase
from grid.errors import Forbidden
from grid.org import api_clients, demo
from grid.org.models import OrgUnit, StaffRole
from tests.api.helpers import fill_boundaries, make_app
from tests.web_helpers import REPORT, staff_id

POINT = {"text": "檀溪路", "lat": 32.0213, "lng": 112.1432}


def _staff_on(svc, unit: str) -> str:
    with svc.db.read() as s:
        return s.scalar(select(StaffRole.staff_id).where(StaffRole.unit_code == unit, StaffRole.active.is_(True))
                        .order_by(StaffRole.id).limit(1))


def _values(svc) -> dict:
    today = clock.local(clock.now()).date()
    with svc.db.read() as s:
        path = s.get(OrgUnit, demo.CITY_CODE).path
        return evaluate(s, path, today - timedelta(days=1), today + timedelta(days=1))


def test_each_source_is_kept_and_counted(svc, tmp_path):
    fill_boundaries(svc)
    app = make_app(svc, tmp_path)
    http = app.test_client()
    key = api_clients.create(svc, "311", ["reports:create"], demo.CITY_CODE)[1]
    r = http.post("/open311/v2/requests.json", data={"api_key": key, "service_code": "municipal", "lat": "32.0213",
                                                     "long": "112.1432", "description": "路灯长期不亮引发的纠纷"})
    assert r.status_code == 200, r.data
    o311 = r.json[0]["service_request_id"]
    h = {"Authorization": f"Bearer {key}"}
    r = http.post("/api/v1/reports", json={"category": "neighbour", "description": "接口上报的邻里噪音纠纷", "location": POINT},
                  headers=h)
    assert r.status_code == 201, r.data
    api_case = r.json["case_no"]
    r = http.post("/api/v1/reports", json={"category": "neighbour", "description": "热线转来的楼道堆物纠纷",
                                           "location": POINT, "source": "hotline",
                                           "on_behalf_of": {"name": "张先生", "phone": "13800000000"}}, headers=h)
    assert r.status_code == 201, r.data
    hotline_case = r.json["case_no"]
    r = http.post("/api/v1/reports", json={"category": "neighbour", "description": "自称网格员上报的纠纷", "location": POINT,
                                           "source": "grid_worker"}, headers=h)
    assert r.status_code == 422 and "grid_worker" in r.json["detail"], "a client cannot say a grid worker reported"

    worker = staff_id(svc, demo.SEED_GRID_WORKER[0])
    own = cases.report(svc, worker, REPORT)
    operator = _staff_on(svc, demo.SEED_COUNTY)
    window = cases.report(svc, operator, {**REPORT, "settled_on_spot": False}, grid_code=demo.SEED_GRID,
                          source="window", on_behalf_of={"name": "李女士", "phone": "13900000000"})
    with pytest.raises(Forbidden):  # an operator of another district
        cases.report(svc, _staff_on(svc, "420606000000"), REPORT, grid_code=demo.SEED_GRID, source="hotline")
    with pytest.raises(Forbidden):  # the grid worker's own phone still needs her own grid
        cases.report(svc, operator, REPORT)

    with svc.db.read() as s:
        got = dict(s.execute(select(DisputeCase.case_no, DisputeCase.source)).all())
        reporters = dict(s.execute(select(DisputeCase.case_no, DisputeCase.reporter_id)).all())
    assert got == {o311: "open311", api_case: "api", hotline_case: "hotline", own.case_no: "grid_worker",
                   window.case_no: "window"}
    assert set(reporters.values()) == {worker}, "the grid's worker is the reporter of every case (she verifies)"
    with svc.db.read() as s:  # the process carries who took it and for whom, as the next task sees
        guid = s.scalar(select(WorkItem.task_guid).where(WorkItem.instance_id == window.instance_id,
                                                         WorkItem.state == "open").limit(1))
    seen = svc.runtime.task_data(window.instance_id, guid)
    assert seen["source"] == "window" and seen["taken_by"] == operator
    assert seen["on_behalf_of"] == {"name": "李女士", "phone": "13900000000"}
    assert svc.runtime.history(window.instance_id)[0].actor == operator

    v = _values(svc)
    assert v["reported_open311"] == 1 and v["reported_api"] == 1 and v["reported_hotline"] == 1
    assert v["reported_window"] == 1 and v["reported_grid_worker"] == 1 and v["reported"] == 5
    with svc.db.write() as s:
        assert rollup.rebuild(s, svc.runtime.calendar, check=True) == [], "rollup equals a rebuild"
