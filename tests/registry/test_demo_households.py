"""The demo households: every grid filled, valid unique ID numbers, flags with running schedules in the
seed village, deterministic, once only."""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from grid.org import demo
from grid.registry import demo as registry_demo
from grid.registry import rules, visits
from grid.registry.models import Building, Resident, SpecialFlag


def test_the_small_demo_city_gets_households(fake_clock, svc):
    visits.install(svc)
    counts = registry_demo.fill(svc, "small")
    assert counts["created"] and counts["flags"] == 10 and counts["flags_active"] == 10
    assert counts["households"] == 15 * 12 + 40 and counts["residents"] > 2 * counts["households"]
    with svc.db.read() as s:
        per_grid = dict(s.execute(select(Building.grid_code, func.count()).group_by(Building.grid_code)).all())
        assert len(per_grid) == 16
        ids = list(s.scalars(select(Resident.id_number)))
        heads = s.scalar(select(func.count()).select_from(Resident).where(Resident.relation == "head"))
        flags = list(s.scalars(select(SpecialFlag)))
    assert len(ids) == len(set(ids)) == counts["residents"]
    assert all(rules.id_problem(i) is None for i in ids)
    assert heads == counts["households"]
    assert {f.grid_code[:12] for f in flags} == {demo.SEED_VILLAGE} and all(f.instance_id for f in flags)
    assert registry_demo.fill(svc, "small")["created"] is False


def test_the_households_are_deterministic():
    g = registry_demo.GridInfo("420602003005015", 15, "檀溪社区", "社区", "真武山街道", "420602", 32.03, 112.14)

    def draw():
        people = registry_demo.People(date(2026, 1, 5))
        return [(b["address"], door, [p["id_number"] for p in ps]) for b, hhs in
                registry_demo.grid_rows(g, 30, 42, people) for door, ps in hhs]

    first = draw()
    assert first == draw() and len(first) == 30
    village = registry_demo.GridInfo("420606100200001", 1, "王家湾村", "村", "东津镇", "420606", 32.0, 112.2)
    rows = list(registry_demo.grid_rows(village, 5, 42, registry_demo.People(date(2026, 1, 5))))
    assert [b["address"] for b, _ in rows] == [f"东津镇王家湾村1组{i}号" for i in range(1, 6)]
