"""What the route walks share (tests/web/test_authz.py, tests/security/test_route_matrix.py,
tests/security/test_fuzz.py): the people outside the secret world, the secret world itself (a case
in 檀溪社区第十五网格 with an open mediation, a completed dispatch, a linked photo and a loose one;
a registry household, resident and flag in the same grid), and the argument sets that address its
objects in a rule of app.url_map."""
from __future__ import annotations

import io
from datetime import date

from grid.cases import attachments
from grid.registry import visits
from grid.registry.models import Household
from tests.registry_helpers import household, make_id, person
from tests.web_helpers import SEED_GRID, dispatch, open_items, png, report_case, rule_url, staff_id

# another grid's worker in the same community, another community's head, another street's
# dispatcher, the other county's supervisor
OUTSIDERS = ["gw.420602003005001", "head.420602003001", "disp1.420602001000", "sup.420606000000"]
READ_ONLY = ["disp1.420600000000"]  # the city dispatcher: may see the case (in the city), change nothing
VILLAGE = SEED_GRID[:12]
IDN = make_id("420602", date(1970, 5, 1), 11)  # the secret resident's ID number
RESIDENT_PHONE = "13812341234"


def secret_case(svc) -> dict:
    """The secret case: reported by jiangranran, dispatched to the community's mediators. `tasks` is
    [the open mediation, the completed dispatch]."""
    c = report_case(svc)
    gw = staff_id(svc, "jiangranran")
    photo = attachments.store(svc, gw, "现场.png", io.BytesIO(png()))
    attachments.link(svc, gw, [photo.id], c.id)
    loose = attachments.store(svc, gw, "未关联.png", io.BytesIO(png()))
    done = open_items(svc, c.id, "dispatch")[0].task_guid
    dispatch(svc, c.id)
    mediate = open_items(svc, c.id, "mediate")[0].task_guid
    return {"case": c, "case_id": c.id, "photo": photo.id, "loose": loose.id, "tasks": [mediate, done],
            "reporter": gw}


def secret_household(svc, actor: str) -> dict:
    """A household in the secret grid with 张建国 (ID number IDN, phone RESIDENT_PHONE) and a flag."""
    hid = household(svc, actor, SEED_GRID, "檀溪路1号1栋", "1-101")
    rid = person(svc, actor, hid, "张建国", date(1970, 5, 1), 11, "head", phone=RESIDENT_PHONE)
    fid = visits.flag(svc, actor, rid, "released", "low")
    with svc.db.read() as s:
        bid = s.get(Household, hid).building_id
    return {"household_id": hid, "resident_id": rid, "flag_id": fid, "building_id": bid, "code": SEED_GRID,
            "unit": VILLAGE}


def secret_world(svc) -> dict:
    """The case and the household together (the registry's visit listener must be installed: the
    `reg` fixture)."""
    w = secret_case(svc)
    return {**w, **secret_household(svc, w["reporter"])}


def variants(rule, w: dict) -> list[dict]:
    """Argument sets for `rule`: every object of the secret world it could address."""
    args = set(rule.arguments)
    base = {k: w[k] for k in ("case_id", "household_id", "resident_id", "flag_id", "building_id", "code", "unit",
                              "job_id") if k in w}
    if "task_guid" in args:
        return [{**base, "task_guid": g} for g in w["tasks"]]
    if "attachment_id" in args:
        return [{**base, "attachment_id": a} for a in (w["photo"], w["loose"])]
    return [base]


def requests(app, w: dict, skip=("auth.logout", "auth.login")):
    """(rule, method, url) for every rule of the app but `static` and `skip`, every method, every
    object of `w` it could address."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint in skip:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for values in variants(rule, w):
                yield rule, method, rule_url(rule, values)


def text_of(r) -> str:
    """A response body as text when it is text or JSON, else ''."""
    mt = r.mimetype or ""
    return r.get_data(as_text=True) if mt.startswith("text") or "json" in mt else ""


def everything(svc, case_id: int) -> tuple:
    """What any request could change: the case, the registry, staff, roles and units."""
    from sqlalchemy import func, select

    from grid.org.models import OrgUnit, Staff, StaffRole
    from grid.registry.models import Building, Resident, ResidentEvent, SpecialFlag
    from tests.web_helpers import fingerprint

    with svc.db.read() as s:
        counts = tuple(s.scalar(select(func.count()).select_from(t)) for t in
                       (Building, Household, Resident, ResidentEvent, SpecialFlag, OrgUnit, StaffRole))
        people = sorted((r.id, r.name, r.status, r.phone, r.household_id, r.grid_code) for r in s.scalars(select(Resident)))
        flags = sorted((f.id, f.active, f.risk_level) for f in s.scalars(select(SpecialFlag)))
        staff = sorted((x.id, x.name, x.active) for x in s.scalars(select(Staff)))
        roles = sorted((r.id, r.staff_id, r.unit_code, r.role, r.active) for r in s.scalars(select(StaffRole)))
        units = sorted((u.code, u.name) for u in s.scalars(select(OrgUnit)))
    return fingerprint(svc, case_id), counts, people, flags, staff, roles, units
