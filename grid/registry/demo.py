"""Synthetic households for the demo city: buildings, households and residents in every grid,
plus a few special-population flags (with running visit schedules) in the seed village.

Deterministic for a seed: each grid draws from its own random stream (seed and grid code), so
the result does not depend on the order of grids or on the size of the rest of the city.
ID numbers are valid (region = the county code, check digit computed) and unique; names and
phones are synthetic. Bulk inserts, one transaction; flags afterwards through `grid.registry.visits`.

    fill(svc, size="small")  # the test city: 16 grids, ~12 households each (the seed grid 40)
    fill(svc, size="full")   # the whole city: 15-35 households per grid (the seed grid 120)
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import String, bindparam, func, select
from sqlalchemy.orm import Session

from engine import clock
from engine.errors import EngineError
from grid import crypto
from grid.org import demo
from grid.org import service as org
from grid.org.models import OrgUnit
from grid.registry import counts as registry_counts
from grid.registry import rules, visits
from grid.registry.models import ID_CONTEXT, PHONE_CONTEXT, Building, Household, Resident, SpecialFlag

ROADS = ("檀溪路", "长虹路", "胜利街", "春园路", "人民路", "解放路", "建设路", "汉江路", "新华路", "光明路",
         "朝阳路", "友谊街", "中原路", "滨江路", "清河路", "卧龙路", "文昌路", "永安路", "青云路", "丰乐街")
SEED_FLAGS = [  # (category, risk) for the seed grid
    ("elderly_alone", "high"), ("elderly_alone", "medium"), ("community_correction", "high"),
    ("mental_disorder", "medium"), ("released", "low"), ("left_behind_child", "medium"), ("disabled", "low"),
    ("key_youth", "medium"),
]
GRID_BATCH = 200


@dataclass
class GridInfo:
    code: str
    seq: int  # the grid's number within its village
    village: str
    village_kind: str  # 社区 | 村
    township: str
    county6: str
    lat: float
    lng: float


class People:
    """Draws households of synthetic people with valid, unique ID numbers."""

    def __init__(self, today: date):
        self.today = today
        self.used: dict[str, int] = {}  # region + birth date + sex -> how many drawn

    def id_number(self, rng: random.Random, region: str, born: date, male: bool) -> str:
        while True:
            day = f"{region}{born.year:04d}{born.month:02d}{born.day:02d}"  # strftime is slow
            key = day + ("1" if male else "0")
            n = self.used.get(key, 0)
            self.used[key] = n + 1
            if n < 500:  # 500 men and 500 women per region and day; then borrow the neighbouring day
                break
            born -= timedelta(days=1)
        first = f"{day}{n * 2 + (1 if male else 0):03d}"
        return first + rules.id_check_char(first)

    def born(self, rng: random.Random, age: int) -> date:
        d = self.today - timedelta(days=age * 365 + rng.randint(0, 364))
        return d if d < self.today else self.today - timedelta(days=1)

    @staticmethod
    def name(rng: random.Random, surname: str | None = None) -> str:
        given = rng.choice(demo.GIVEN) + (rng.choice(demo.GIVEN) if rng.random() < 0.6 else "")
        return (surname or rng.choice(demo.SURNAMES)) + given

    @staticmethod
    def phone(rng: random.Random) -> str:
        return f"1{'3589'[rng.randrange(4)]}{rng.randrange(10**9):09d}"

    def person(self, rng, region, age, relation, surname=None, male=None) -> dict:
        male = rng.random() < 0.5 if male is None else male
        born = self.born(rng, age)
        return {"name": self.name(rng, surname), "id_number": self.id_number(rng, region, born, male),
                "phone": self.phone(rng) if age >= 16 and rng.random() < 0.85 else None, "birth_date": born,
                "sex": "M" if male else "F", "relation": relation, "status": "living"}

    def household(self, rng: random.Random, region: str) -> list[dict]:
        """One household's members, the head first."""
        x = rng.random()
        surname = rng.choice(demo.SURNAMES)
        male = rng.random() < 0.6
        if x < 0.12:  # an old person living alone (独居老人)
            return [self.person(rng, region, rng.randint(65, 92), "head", surname)]
        if x < 0.22:  # an old couple (空巢)
            age = rng.randint(62, 85)
            return [self.person(rng, region, age, "head", surname, male),
                    self.person(rng, region, max(age + rng.randint(-4, 4), 60), "spouse", None, not male)]
        if x < 0.35:  # young single or couple
            age = rng.randint(22, 38)
            out = [self.person(rng, region, age, "head", surname, male)]
            if rng.random() < 0.5:
                out.append(self.person(rng, region, max(age + rng.randint(-3, 3), 20), "spouse", None, not male))
            return out
        age = rng.randint(28, 60)
        out = [self.person(rng, region, age, "head", surname, male)]
        if rng.random() < 0.88:
            out.append(self.person(rng, region, max(age + rng.randint(-4, 4), 22), "spouse", None, not male))
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
            kid = min(max(age - rng.randint(22, 34), 0), 40)
            out.append(self.person(rng, region, kid, "child", surname))
        if rng.random() < 0.18:  # three generations
            out.append(self.person(rng, region, min(age + rng.randint(24, 32), 95), "parent", surname))
        return out


def _grids(s: Session, codes: list[str] | None = None) -> list[GridInfo]:
    village = OrgUnit.__table__.alias("v")
    township = OrgUnit.__table__.alias("t")
    q = (select(OrgUnit.code, OrgUnit.lat, OrgUnit.lng, village.c.name, village.c.kind, township.c.name)
         .join(village, village.c.code == OrgUnit.parent_code)
         .join(township, township.c.code == village.c.parent_code)
         .where(OrgUnit.level == "grid"))
    if codes is not None:
        q = q.where(OrgUnit.code.in_(codes))
    out = []
    for code, lat, lng, vname, vkind, tname in s.execute(q.order_by(OrgUnit.code)):
        out.append(GridInfo(code, int(code[-3:]), vname, vkind, tname, code[:6], lat or 32.0, lng or 112.1))
    return out


def grid_rows(g: GridInfo, n_households: int, seed: int, people: People) -> Iterator[tuple[dict, list[tuple]]]:
    """(building, [(door, members)]) for one grid, deterministic for (seed, grid)."""
    rng = random.Random(f"{seed}:{g.code}")
    prefix = f"{g.township}{g.village}"
    left = n_households
    n = 0
    if g.village_kind == "村":  # one compound per household, numbered within the villagers' group
        while left > 0:
            n += 1
            b = {"address": f"{prefix}{g.seq}组{n}号", "lat": round(g.lat + rng.uniform(-0.004, 0.004), 6),
                 "lng": round(g.lng + rng.uniform(-0.004, 0.004), 6)}
            left -= 1
            yield b, [("1", people.household(rng, g.county6))]
        return
    road = ROADS[rng.randrange(len(ROADS))]
    while left > 0:
        n += 1
        b = {"address": f"{prefix}{road}{g.seq * 100 + n}号", "lat": round(g.lat + rng.uniform(-0.003, 0.003), 6),
             "lng": round(g.lng + rng.uniform(-0.003, 0.003), 6)}
        units, floors = rng.choice(((1, 6), (2, 6), (2, 7), (3, 6), (1, 11)))
        doors = [f"{u}-{f}0{d}" for u in range(1, units + 1) for f in range(1, floors + 1) for d in (1, 2)]
        take = min(left, max(4, int(len(doors) * rng.uniform(0.6, 0.95))))
        left -= take
        yield b, [(door, people.household(rng, g.county6)) for door in doors[:take]]


def households_for(g: GridInfo, size: str, seed: int) -> int:
    if g.code == demo.SEED_GRID:
        return 40 if size == "small" else 120
    if size == "small":
        return 12
    return random.Random(f"{seed}:{g.code}:n").randint(15, 35)


def fill(svc, size: str = "small", seed: int = 42, progress: Callable[[int, int, str], None] | None = None,
         flags: bool = True, now: datetime | None = None) -> dict:
    """Fill every grid of the demo city with synthetic households; returns the counts. Does nothing
    (created False) when any building exists. Flags need the special_visit process deployed."""
    if size not in ("small", "full"):
        raise ValueError("size must be 'small' or 'full'")
    now = now or clock.now()
    with svc.db.write() as s:
        if s.scalar(select(Building.id).limit(1)) is not None:
            return {**counts(s), "created": False}
        grids = _grids(s)
        people = People(clock.local(now).date())
        with _big_cache(s), registry_counts.paused(s):
            for i in range(0, len(grids), GRID_BATCH):
                part = grids[i:i + GRID_BATCH]
                insert_grids(s, [(g, households_for(g, size, seed)) for g in part], seed, people, now)
                if progress:
                    progress(min(i + GRID_BATCH, len(grids)), len(grids), "households")
    n_flags = _seed_flags(svc) if flags else 0
    with svc.db.read() as s:
        return {**counts(s), "flags": n_flags, "created": True}


@contextmanager
def _big_cache(s: Session, kib: int = 256 * 1024):
    """A larger SQLite page cache while the city is inserted: the resident indexes (blind
    indexes, names) take random keys, and with the default 2 MB cache every insert misses."""
    if s.bind.dialect.name != "sqlite":
        yield
        return
    conn = s.connection()
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{int(kib)}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(before)}")


_R_COLS = ("household_id", "grid_code", "name", "id_number", "id_index", "id_tail", "phone", "phone_index",
           "birth_date", "sex", "relation", "status", "created_at", "updated_at", "created_batch_id")


def _bulk(s: Session, table, cols: tuple[str, ...], rows: list[tuple], plain: tuple[str, ...] = ()) -> None:
    """executemany of `rows` (tuples in `cols` order). SQLite: the driver's executemany on a plain
    statement, values pre-formatted as SQLAlchemy stores them (no per-row type processing, which
    is most of the Python cost of a bulk insert); elsewhere Core's batched insert, with `plain`
    columns bound as strings (values already sealed)."""
    if not rows:
        return
    if s.bind.dialect.name == "sqlite":
        sql = f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        s.connection().exec_driver_sql(sql, rows)
        return
    stmt = table.insert().values({c: bindparam(c, type_=String()) for c in plain}) if plain else table.insert()
    s.execute(stmt, [dict(zip(cols, r, strict=True)) for r in rows])


def insert_grids(s: Session, plan: list[tuple[GridInfo, int]], seed: int, people: People, now: datetime) -> int:
    """Insert buildings, households and residents for (grid, number of households) pairs; returns
    the number of residents. Ids are read back by natural key (RETURNING with many rows goes row by
    row on SQLite). ID numbers and phones are sealed and indexed in bulk (`crypto.seal_many`,
    `crypto.blind_many`: the same tokens and indexes as one by one)."""
    sqlite = s.bind.dialect.name == "sqlite"
    stamp = now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now
    b_rows, h_plan = [], []
    for g, n in plan:
        for b, hhs in grid_rows(g, n, seed, people):
            b_rows.append((g.code, b["address"], b["lat"], b["lng"], stamp))
            h_plan.append((b["address"], g.code, hhs))
    if not b_rows:
        return 0
    bt, ht = Building.__table__, Household.__table__
    _bulk(s, bt, ("grid_code", "address", "lat", "lng", "created_at"), b_rows)
    bids: dict[str, int] = {}
    addresses = [r[1] for r in b_rows]
    for i in range(0, len(addresses), 500):
        bids.update({a: i_ for i_, a in s.execute(select(bt.c.id, bt.c.address)
                                                  .where(bt.c.address.in_(addresses[i:i + 500])))})
    h_rows, members = [], {}
    for address, grid, hhs in h_plan:
        bid = bids[address]
        for door, people_ in hhs:
            h_rows.append((bid, door, stamp))
            members[(bid, door)] = (grid, people_)
    _bulk(s, ht, ("building_id", "door_no", "created_at"), h_rows)
    plain: list[tuple] = []
    ids = sorted(bids.values())
    for i in range(0, len(ids), 500):
        for hid, bid, door in s.execute(select(ht.c.id, ht.c.building_id, ht.c.door_no)
                                        .where(ht.c.building_id.in_(ids[i:i + 500])).order_by(ht.c.id)):
            grid, ps = members[(bid, door)]
            plain += [(hid, grid, p) for p in ps]
    idns = [p["id_number"].strip().upper() if p["id_number"] else None for _h, _g, p in plain]
    phones = [p["phone"].strip() if p["phone"] else None for _h, _g, p in plain]
    sealed = zip(crypto.seal_many([p["id_number"] for _h, _g, p in plain], ID_CONTEXT),
                 crypto.blind_many(idns, ID_CONTEXT),
                 crypto.seal_many([p["phone"] for _h, _g, p in plain], PHONE_CONTEXT),
                 crypto.blind_many(phones, PHONE_CONTEXT), idns, strict=True)
    r_rows = []
    for (hid, grid, p), (sid, sidx, sph, sphx, idn) in zip(plain, sealed, strict=True):
        born = p["birth_date"]
        r_rows.append((hid, grid, p["name"], sid, sidx, idn[-4:] if idn else None, sph, sphx,
                       born.isoformat() if sqlite else born, p["sex"], p["relation"], p["status"], stamp, stamp,
                       None))
    for i in range(0, len(r_rows), 5000):
        _bulk(s, Resident.__table__, _R_COLS, r_rows[i:i + 5000], plain=("id_number", "phone"))
    return len(r_rows)


def fill_grid(svc, grid_code: str, households: int, seed: int = 7) -> int:
    """Add `households` synthetic households to one grid (e.g. for a benchmark); returns residents."""
    with svc.db.write() as s:
        (g,) = _grids(s, [grid_code])
        existing = s.scalar(select(func.count()).select_from(Building).where(Building.grid_code == grid_code))
        if existing:
            raise ValueError(f"grid {grid_code} already has buildings")
        people = People(clock.local(clock.now()).date())
        taken = {idn for idn in s.scalars(select(Resident.id_number).where(Resident.grid_code.like(f"{g.county6}%")))
                 if idn and idn.startswith(g.county6)}  # sealed at rest: filtered after opening
        people.used = {}
        for idn in taken:  # continue the per-day counters after the ids already there
            key = idn[:14] + str(int(idn[16]) % 2)
            people.used[key] = max(people.used.get(key, 0), int(idn[14:17]) // 2 + 1)
        return insert_grids(s, [(g, households)], seed, people, clock.now())


def _seed_flags(svc) -> int:
    """Flag a few residents in the seed village's grids (their workers flag them)."""
    from engine.models import ProcessDefinition

    with svc.db.read() as s:
        if s.get(ProcessDefinition, visits.PROCESS_ID) is None:
            return 0
        grids = [g.code for g in org.children(s, demo.SEED_VILLAGE) if g.level == "grid"]
        plan = []
        for code in grids:
            worker = org.current_grid_worker(s, code)
            if worker is None:
                continue
            wanted = SEED_FLAGS if code == demo.SEED_GRID else SEED_FLAGS[:2]
            picked: set[int] = set()
            for category, risk in wanted:
                rid = _pick(s, code, category, picked)
                if rid is not None:
                    picked.add(rid)
                    plan.append((worker.id, rid, category, risk))
    n = 0
    for actor, rid, category, risk in plan:
        try:
            visits.flag(svc, actor, rid, category, risk, note="demo")
            n += 1
        except EngineError:
            continue
    return n


def _pick(s: Session, grid: str, category: str, taken: set[int]) -> int | None:
    """A plausible resident of the grid for a category (old people living alone, children ...)."""
    today = clock.local(clock.now()).date()
    q = select(Resident.id, Resident.birth_date, Resident.relation, Resident.household_id).where(
        Resident.grid_code == grid, Resident.status == "living").order_by(Resident.id)
    rows = [r for r in s.execute(q) if r.id not in taken]
    sizes: dict[int, int] = {}
    for r in rows:
        sizes[r.household_id] = sizes.get(r.household_id, 0) + 1

    def years(r) -> int:
        return rules.age(r.birth_date, today) or 0

    tests = {
        "elderly_alone": lambda r: years(r) >= 65 and sizes[r.household_id] <= 2,
        "left_behind_child": lambda r: years(r) < 16 and r.relation == "child",
        "key_youth": lambda r: 14 <= years(r) <= 25,
        "disabled": lambda r: years(r) >= 30,
    }
    test = tests.get(category, lambda r: 18 <= years(r) <= 60)
    return next((r.id for r in rows if test(r)), None)


def counts(s: Session) -> dict:
    out = {
        "buildings": s.scalar(select(func.count()).select_from(Building)) or 0,
        "households": s.scalar(select(func.count()).select_from(Household)) or 0,
        "residents": s.scalar(select(func.count()).select_from(Resident)) or 0,
    }
    out["flags_active"] = s.scalar(select(func.count()).select_from(SpecialFlag).where(
        SpecialFlag.active.is_(True))) or 0
    return out
