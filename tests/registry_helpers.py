"""Shared helpers for the registry tests: a few buildings and households in the small demo city."""
from __future__ import annotations

from datetime import date

from sqlalchemy import select

from engine.models import WorkItem
from grid.org import demo
from grid.org import service as org
from grid.org.models import Staff
from grid.registry import households, rules

SEED_GRID = demo.SEED_GRID  # 檀溪社区 第十五网格 (jiangranran)
OTHER_GRID = demo.SEED_VILLAGE + "001"  # 檀溪社区 第一网格, same village (grid head qiuyun)
FAR_GRID = "420606001001001"  # 樊城区: another county


def sid(svc, username: str) -> str:
    with svc.db.read() as s:
        return org.staff_by_username(s, username).id


def worker_of(svc, grid: str) -> str:
    with svc.db.read() as s:
        return org.current_grid_worker(s, grid).id


def first_with_role(svc, unit: str, role: str) -> str:
    with svc.db.read() as s:
        return org.staff_for(s, unit, role)[0].id


def make_id(region: str, born: date, seq: int) -> str:
    """A valid 18-character ID number (seq odd = male)."""
    first = f"{region}{born:%Y%m%d}{seq:03d}"
    return first + rules.id_check_char(first)


def household(svc, actor: str | None, grid: str, address: str, door: str = "101", **kw) -> int:
    bid = households.add_building(svc, actor, grid, address, kw.get("lat"), kw.get("lng"))
    return households.add_household(svc, actor, bid, door)


def person(svc, actor, household_id: int, name: str, born: date, seq: int, relation: str = "head",
           phone: str | None = "13800001234") -> int:
    return households.move_in(svc, actor, household_id, name=name, id_number=make_id("420602", born, seq),
                              relation=relation, phone=phone)


def seed_family(svc, **where) -> tuple[str, int, int, int]:
    """jiangranran's household 檀溪路1号1栋 1-101 in the seed grid (`where`: lat, lng) with 张建国 (head)
    and 李秀英 (spouse, no phone): (grid worker, household, head, spouse)."""
    gw = sid(svc, "jiangranran")
    hid = household(svc, gw, SEED_GRID, "檀溪路1号1栋", "1-101", **where)
    head = person(svc, gw, hid, "张建国", date(1970, 5, 1), 11, "head", phone="13812341234")
    spouse = person(svc, gw, hid, "李秀英", date(1972, 3, 8), 22, "spouse", phone=None)
    return gw, hid, head, spouse


def open_items(svc, instance_id: int, task: str | None = None) -> list[WorkItem]:
    with svc.db.read() as s:
        q = select(WorkItem).where(WorkItem.instance_id == instance_id, WorkItem.state == "open")
        if task:
            q = q.where(WorkItem.task_spec == task)
        return list(s.scalars(q.order_by(WorkItem.id)))


def staff_name(svc, staff_id: str) -> str:
    with svc.db.read() as s:
        return s.get(Staff, staff_id).name
