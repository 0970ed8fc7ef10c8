"""Helpers for the web tests: an app over the `svc` fixture, signed-in test clients, the seed case.


"""
from __future__ import annotations

import io
import re
import struct
import zlib

from sqlalchemy import func, select

from engine.models import Instance, InstanceEvent, WorkItem
from grid.cases import service as cases
from grid.cases.models import Attachment, CaseRecord, DisputeCase
from grid.org.passwords import DEMO_PASSWORD

SEED_GRID = "420602003005015"
REPORT = {
    "category": "municipal",
    "description": "南山家属院雨污分流改造，施工方拟在原破旧路面上直接刷黑，居民担心雨水倒灌进楼道。",
    "location": {"text": "襄城区檀溪社区南山家属院", "lat": 32.0213, "lng": 112.1432},
    "parties": [{"name": "南山家属院居民代表", "phone": "13800000001"},
                {"name": "雨污分流改造施工方", "phone": "13800000002"}],
    "settled_on_spot": False,
}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def png(width: int = 4, height: int = 4) -> bytes:
    row = b"\x00" + b"\xc8\x3c\x28" * width

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def make_app(svc, tmp_path, **config):
    """The app over a prepared Services object, uploads in tmp_path (the `app` fixture of
    tests/conftest.py; a module that needs more, e.g. extra config, declares its own)."""
    from web import create_app

    svc.settings.uploads = tmp_path / "uploads"
    svc.settings.secret_key = "test-secret"
    return create_app(svc.settings, services=svc, TESTING=True, **config)


def csrf(client, path: str = "/settings") -> str:
    r = client.get(path)
    m = TOKEN.search(r.get_data(as_text=True))
    if m is None:
        m = TOKEN.search(client.get("/login").get_data(as_text=True))
    return m.group(1)


def login(app, username: str, password: str = DEMO_PASSWORD):
    """A test client signed in as `username`."""
    client = app.test_client()
    token = csrf(client, "/login")
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert r.status_code == 302, (username, r.status_code)
    return client


def session_as(client, staff_id: str) -> None:
    """Sign `client` in as `staff_id` by writing its session (no password, a fresh sign-in now)."""
    from engine import clock

    with client.session_transaction() as sess:
        now = clock.now().timestamp()
        sess.update({"_user_id": staff_id, "_fresh": True, "t0": now, "seen": now})


def admin_client(svc, locale: str | None = None):
    """A test client, without CSRF checks, of an app over `svc`, signed in as a new city administrator
    `admin1` (its pages in `locale`, else the default language)."""
    from datetime import date

    from grid.config import Settings
    from grid.org import service as org
    from grid.org.models import StaffRole
    from web import create_app

    app = create_app(Settings(database_url=svc.db.url_with_password, secret_key="test-secret"), services=svc,
                     TESTING=True, WTF_CSRF_ENABLED=False)
    with svc.db.write() as s:
        st = org.create_staff(s, "admin1", "管理员", password_hash="!")
        if locale:
            st.locale = locale
        s.add(StaffRole(staff_id=st.id, unit_code="420600000000", role="admin", active=True, since=date(2026, 1, 1)))
        sid = st.id
    client = app.test_client()
    session_as(client, sid)
    return client


def staff_id(svc, username: str) -> str:
    from grid.org import service as org

    with svc.db.read() as s:
        return org.staff_by_username(s, username).id


def open_items(svc, case_id: int, task: str | None = None) -> list[WorkItem]:
    with svc.db.read() as s:
        c = s.get(DisputeCase, case_id)
        q = select(WorkItem).where(WorkItem.instance_id == c.instance_id, WorkItem.state == "open")
        if task:
            q = q.where(WorkItem.task_spec == task)
        return list(s.scalars(q.order_by(WorkItem.id)))


def report_case(svc, data_in: dict | None = None, username: str = "jiangranran") -> DisputeCase:
    """A report by `username` (the seed story's worker by default); another grid's worker reports
    from her own grid's point, since a point outside the reporter's grid is refused."""
    data = {**REPORT, **(data_in or {})}
    if username != "jiangranran" and "location" not in (data_in or {}):
        from grid.org import service as org
        from grid.org.models import OrgUnit

        with svc.db.read() as s:
            grids = [r.unit_code for r in org.roles_of(s, staff_id(svc, username)) if r.role == "grid_worker"]
            grid = s.get(OrgUnit, grids[0]) if grids else None
            if grid is not None and grid.lat is not None:
                data["location"] = {"text": grid.name, "lat": grid.lat, "lng": grid.lng}
    return cases.report(svc, staff_id(svc, username), data)


def dispatch(svc, case_id: int, level_unit: str = "420602003005", as_user: str = "qiuyun") -> None:
    item = open_items(svc, case_id, "dispatch")[0]
    cases.complete_task(svc, staff_id(svc, as_user), item.task_guid,
                        {"action": "dispatch", "assignees": [staff_id(svc, f"med1.{level_unit}"),
                                                             staff_id(svc, f"med2.{level_unit}")]})


def fingerprint(svc, case_id: int) -> dict:
    """Everything a request could change about a case."""
    with svc.db.read() as s:
        c = s.get(DisputeCase, case_id)
        inst = s.get(Instance, c.instance_id)
        return {
            "lock": inst.lock_version, "status": (inst.status, c.status, c.current_level, c.current_unit),
            "events": s.scalar(select(func.count()).select_from(InstanceEvent)
                               .where(InstanceEvent.instance_id == c.instance_id)),
            "items": sorted((w.task_guid, w.state) for w in s.scalars(select(WorkItem)
                                                                      .where(WorkItem.instance_id == c.instance_id))),
            "records": s.scalar(select(func.count()).select_from(CaseRecord).where(CaseRecord.case_id == case_id)),
            "attachments": sorted((a.id, a.case_id) for a in s.scalars(select(Attachment))),
        }


def page_form(client, path: str) -> tuple[str, str, str]:
    """(html, csrf token, lock_version) of a task page."""
    html = client.get(path).get_data(as_text=True)
    lock = re.search(r'name="lock_version" value="(\d+)"', html)
    return html, TOKEN.search(html).group(1), lock.group(1) if lock else ""


class TaskForm:
    """A case's open `task` page as `who` sees it, signed in: `html`, `token` and `lock`; `post(**fields)`
    submits the form with them (a stale or repeated post reuses the same token and lock)."""

    def __init__(self, app, svc, case_id: int, task: str = "dispatch", who: str = "qiuyun"):
        self.guid = open_items(svc, case_id, task)[0].task_guid
        self.client = login(app, who)
        self.html, self.token, self.lock = page_form(self.client, f"/tasks/{self.guid}")

    def post(self, content_type: str | None = None, **fields):
        data = {"csrf_token": self.token, "lock_version": self.lock, **fields}
        return self.client.post(f"/tasks/{self.guid}", data=data, content_type=content_type)


def upload(name: str, data: bytes | None = None):
    return (io.BytesIO(png() if data is None else data), name)


def rule_url(rule, known: dict | None = None) -> str:
    """A URL for a route: arguments from `known` by name, else a plausible value for the converter."""
    from werkzeug.routing.converters import NumberConverter, UUIDConverter

    values = {}
    for arg in rule.arguments:
        if known and arg in known:
            values[arg] = known[arg]
            continue
        conv = rule._converters.get(arg)
        if isinstance(conv, NumberConverter):
            values[arg] = 1
        elif isinstance(conv, UUIDConverter):
            values[arg] = "00000000-0000-0000-0000-000000000000"
        else:
            values[arg] = "x"
    return rule.build(values, append_unknown=False)[1]
