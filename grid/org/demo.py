"""Deterministic demo data: Xiangyang (襄阳市) with its counties, townships, villages, grids and staff.

`generate(db_or_session, size="full")` builds the whole city: 12 county-level units, 118
townships/streets, 2,760 villages/communities, ~9,700 grids and ~21,000 accounts, with
bulk inserts. `size="small"` builds a 2-county slice for tests in well under a second.
Names are synthetic (word lists) except the seed chain used by docs and scenarios:
襄阳市 / 襄城区 / 真武山街道 / 檀溪社区 / 第十五网格, whose grid worker is 江冉冉
(`jiangranran`) and whose grid head is 邱云 (`qiuyun`).

Every demo account has the password DEMO_PASSWORD and shares ONE precomputed hash (see
`grid.passwords.demo_password_hash`): demo-only, never do this for real accounts.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from engine import clock
from engine.db import Database
from grid.org.models import DEPARTMENT, LEVELS, OrgUnit, Staff, StaffRole
from grid.org.passwords import DEMO_PASSWORD, demo_password_hash

__all__ = ["DEMO_PASSWORD", "generate", "demo_accounts", "SEED_GRID", "SEED_VILLAGE"]

CITY_CODE = "420600000000"
CITY_NAME = "襄阳市"
SEED_COUNTY = "420602000000"  # 襄城区
SEED_TOWNSHIP = "420602003000"  # 真武山街道
SEED_VILLAGE = "420602003005"  # 檀溪社区
SEED_GRID = "420602003005015"  # 檀溪社区第十五网格
SEED_GRID_WORKER = ("jiangranran", "江冉冉")
SEED_GRID_HEAD = ("qiuyun", "邱云")

TARGET_VILLAGES = 2760  # full mode: villages + communities, whatever the seed
CHUNK = 2000

# code, name, kind, lat, lng, (streets, towns, xiang)
COUNTIES = [
    ("420602", "襄城区", "区", 32.010, 112.134, (7, 3, 0)),
    ("420606", "樊城区", "区", 32.045, 112.135, (10, 4, 0)),
    ("420607", "襄州区", "区", 32.087, 112.211, (4, 12, 0)),
    ("420624", "南漳县", "县", 31.774, 111.839, (0, 9, 1)),
    ("420625", "谷城县", "县", 32.263, 111.653, (1, 8, 1)),
    ("420626", "保康县", "县", 31.878, 111.262, (0, 9, 2)),
    ("420682", "老河口市", "市", 32.386, 111.676, (2, 8, 0)),
    ("420683", "枣阳市", "市", 32.129, 112.772, (3, 12, 0)),
    ("420684", "宜城市", "市", 31.720, 112.257, (2, 8, 0)),
    ("420671", "襄阳高新技术产业开发区", "开发区", 32.083, 112.064, (4, 2, 0)),
    ("420672", "襄阳经济技术开发区", "开发区", 32.052, 112.224, (3, 1, 0)),
    ("420673", "鱼梁洲经济开发区", "开发区", 32.040, 112.188, (2, 0, 0)),
]

STREET_WORDS = (
    "东风 解放 胜利 建设 人民 友谊 和平 新华 光明 朝阳 长虹 春园 清河 汉江 米公 "
    "中原 屏襄 钱营 庞公 卧龙 余家湖 太平店 紫贞 七里河 王寨 定中门 清平 米庄 柿铺 "
    "团山 东津 刘集 环城 城南 城北 鄂北 新集 汉水 滨江 隆兴 振华 文昌 永安 青云 "
    "桃园 花园 竹林 西城 东城 北门 南门 梨园 丰乐"
).split()
TOWN_A = "东西南北龙凤青白石金柳桃杨黄红新古太安长清双高平兴福泉云峰马牛鹿鸡茶"
TOWN_B = "山河湖桥岗坪湾店营集庄寺林口塘铺岭冲垭树坝沟"
COMMUNITY_WORDS = (
    "幸福 光明 和平 友谊 建设 新华 胜利 朝阳 春晖 阳光 丽景 锦绣 翠苑 华庭 东湖 西苑 "
    "南湖 北岸 长安 永兴 康乐 民主 团结 繁荣 兴旺 育才 文化 体育 卫生 铁路 电力 "
    "纺织 机电 汽车 化工 邮电 银河 星光 月亮湾 金桂 银杏 紫薇 海棠 丁香 玉兰 荷花 "
    "梧桐 清风 明月 晨曦 滨江 临江 汉江 江华 江山 山水 水岸 鹿门 岘山 古城 昭明 "
    "荆州街 北街 南街 东街 西街 金沙"
).split()
COMMUNITY_SUFFIX = ["", "", "路", "苑", "里", "园", "坊", "新村"]
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚"
    "邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红娥建文辉力斌宇浩凯鹏飞俊帅欣怡"
    "佳琪雪梅琳晨阳海波志国庆春燕晓丹婷宁慧颖倩瑶蕾萌冉云峰亮健鑫淑珍玲荣凤兵立新永发金秋月"
)
_DIGITS = "零一二三四五六七八九"

# 职能部门 on the seed chain (部门协同), added by `add_departments` on top of the generated city:
# (parent, code suffix, name); a department's code is its parent's + 99NN; two handlers each,
# usernames dept1.<code> and dept2.<code>
DEMO_DEPARTMENTS = [
    ("420602003000", "9901", "真武山街道城管中队"),
    ("420602003000", "9902", "真武山司法所"),
    ("420602003000", "9903", "真武山派出所"),
    ("420602000000", "9901", "襄城区住房和城乡建设局"),
    ("420602000000", "9902", "襄城区城市管理执法局"),
]

# (first, second) mediator titles by level
MEDIATOR_TITLES = {
    "village": ("综治主任", "城管主任"),
    "township": ("司法所长", "综治中心主任"),
    "county": ("司法局调解科长", "综治中心主任"),
    "city": ("市司法局调解处长", "市综治中心主任"),
}


def chinese_number(n: int) -> str:
    """1..99 in Chinese numerals: 1 一, 10 十, 15 十五, 20 二十, 21 二十一."""
    if not 1 <= n <= 99:
        raise ValueError(n)
    tens, ones = divmod(n, 10)
    if tens == 0:
        return _DIGITS[ones]
    return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[ones] if ones else "")


def grid_name(n: int) -> str:
    return f"第{chinese_number(n)}网格"


# ---------------------------------------------------------------------------------------------
# Plans: which units exist, before any names are drawn
#   county:   (code6, name, kind, lat, lng, [township...])
#   township: (seq, kind 街道/镇/乡, fixed name | None, [village...])
#   village:  (seq, kind 社区/村, fixed name | None, [grid seq...])


def _full_plan(rng: random.Random) -> list:
    drafts = []  # [county_index, seq, kind, n_comm, n_vill]
    for ci, (_code, _name, _kind, _lat, _lng, (streets, towns, xiang)) in enumerate(COUNTIES):
        for i in range(streets):
            drafts.append([ci, 1 + i, "街道", rng.randint(10, 18), rng.randint(0, 2)])
        for i in range(towns):
            drafts.append([ci, 100 + i, "镇", rng.randint(1, 3), rng.randint(22, 34)])
        for i in range(xiang):
            drafts.append([ci, 200 + i, "乡", 1, rng.randint(15, 22)])
    # Nudge counts until the total is exactly TARGET_VILLAGES, so sizes do not depend on the seed.
    diff = TARGET_VILLAGES - sum(d[3] + d[4] for d in drafts)
    while diff:
        d = drafts[rng.randrange(len(drafts))]
        slot = 3 if d[2] == "街道" else 4
        if diff > 0 and d[slot] < 40:
            d[slot] += 1
            diff -= 1
        elif diff < 0 and d[slot] > 10:
            d[slot] -= 1
            diff += 1

    plan = []
    for ci, (code6, name, kind, lat, lng, _counts) in enumerate(COUNTIES):
        townships = []
        for _, seq, tkind, n_comm, n_vill in (d for d in drafts if d[0] == ci):
            fixed = "真武山街道" if (code6, seq) == ("420602", 3) else None
            villages = []
            for k in range(1, n_comm + 1):
                if fixed and k == 5:
                    villages.append((k, "社区", "檀溪社区", list(range(1, 17))))
                else:
                    villages.append((k, "社区", None, list(range(1, rng.randint(2, 5) + 1))))
            for k in range(200, 200 + n_vill):
                villages.append((k, "村", None, list(range(1, rng.randint(2, 5) + 1))))
            townships.append((seq, tkind, fixed, villages))
        plan.append((code6, name, kind, lat, lng, townships))
    return plan


def _small_plan() -> list:
    two = [1, 2]
    return [
        ("420602", "襄城区", "区", 32.010, 112.134, [
            (1, "街道", None, [(1, "社区", None, two), (2, "社区", None, two)]),
            (3, "街道", "真武山街道", [(1, "社区", None, two), (5, "社区", "檀溪社区", [1, 15])]),
        ]),
        ("420606", "樊城区", "区", 32.045, 112.135, [
            (1, "街道", None, [(1, "社区", None, two), (2, "社区", None, two)]),
            (100, "镇", None, [(200, "村", None, two), (201, "村", None, two)]),
        ]),
    ]


# ---------------------------------------------------------------------------------------------
# Building rows


class _Builder:
    def __init__(self, rng: random.Random, now: datetime):
        self.rng = rng
        self.now = now
        self.since = clock.local(now).date()
        self.hash = demo_password_hash()
        self.units: list[dict] = []
        self.staff: list[dict] = []
        self.roles: list[dict] = []
        self.paths: dict[str, str] = {}
        self.taken_names: set[str] = {"真武山街道", "檀溪社区"}
        self.reserved_people = {SEED_GRID_WORKER[1], SEED_GRID_HEAD[1]}

    # names ----------------------------------------------------------------------------------

    def _draw(self, make: Callable[[], str], used: set[str]) -> str:
        for _ in range(1000):
            name = make()
            if name not in used and name not in self.taken_names:
                used.add(name)
                return name
        raise RuntimeError("ran out of demo names")

    def township_name(self, kind: str, used: set[str]) -> str:
        r = self.rng
        if kind == "街道":
            return self._draw(lambda: r.choice(STREET_WORDS) + "街道", used)
        return self._draw(lambda: r.choice(TOWN_A) + r.choice(TOWN_B) + kind, used)

    def village_name(self, kind: str, used: set[str]) -> str:
        r = self.rng
        if kind == "社区":
            return self._draw(lambda: r.choice(COMMUNITY_WORDS) + r.choice(COMMUNITY_SUFFIX) + "社区", used)

        def make() -> str:
            if r.random() < 0.4:
                return r.choice(SURNAMES) + "家" + r.choice(TOWN_B) + "村"
            return r.choice(TOWN_A) + r.choice(TOWN_B) + "村"

        return self._draw(make, used)

    def person_name(self) -> str:
        r = self.rng
        while True:
            given = r.choice(GIVEN) + (r.choice(GIVEN) if r.random() < 0.6 else "")
            name = r.choice(SURNAMES) + given
            if name not in self.reserved_people:
                return name

    def phone(self) -> str:
        r = self.rng
        return "1" + r.choice("3589") + "".join(r.choice("0123456789") for _ in range(9))

    # rows -----------------------------------------------------------------------------------

    def unit(self, code: str, name: str, level: str, kind: str, parent: str | None,
             lat: float, lng: float) -> None:
        path = (self.paths[parent] if parent else "") + code + "/"
        self.paths[code] = path
        self.units.append({
            "code": code, "name": name, "level": level, "depth": LEVELS.index(level) + 1,
            "parent_code": parent, "path": path, "kind": kind,
            "lat": round(lat, 6), "lng": round(lng, 6),
        })

    def person(self, unit_code: str, role: str, username: str, name: str | None = None,
               title: str | None = None) -> None:
        sid = f"u{len(self.staff) + 1:06d}"
        self.staff.append({
            "id": sid, "username": username, "name": name or self.person_name(),
            "phone": self.phone(), "password_hash": self.hash, "active": True, "locale": "zh_CN",
            "failed_logins": 0, "locked_until": None, "created_at": self.now,
        })
        self.roles.append({
            "staff_id": sid, "unit_code": unit_code, "role": role, "title": title,
            "active": True, "since": self.since, "until": None,
        })

    def centre_staff(self, code: str, level: str) -> None:
        """Dispatchers, mediators and a supervisor for a township/county/city centre."""
        t1, t2 = MEDIATOR_TITLES[level]
        self.person(code, "dispatcher", f"disp1.{code}")
        self.person(code, "dispatcher", f"disp2.{code}")
        self.person(code, "mediator", f"med1.{code}", title=t1)
        self.person(code, "mediator", f"med2.{code}", title=t2)
        self.person(code, "supervisor", f"sup.{code}")
        if level in ("county", "city"):  # 12345 hotline / service window operator (grid.cases.intake)
            self.person(code, "operator", f"op.{code}", title="热线受理员")

    def village_staff(self, code: str) -> None:
        t1, t2 = MEDIATOR_TITLES["village"]
        if code == SEED_VILLAGE:
            self.person(code, "grid_head", SEED_GRID_HEAD[0], SEED_GRID_HEAD[1])
        else:
            self.person(code, "grid_head", f"head.{code}")
        self.person(code, "mediator", f"med1.{code}", title=t1)
        self.person(code, "mediator", f"med2.{code}", title=t2)
        self.person(code, "supervisor", f"sup.{code}")

    def grid_staff(self, code: str) -> None:
        if code == SEED_GRID:
            self.person(code, "grid_worker", SEED_GRID_WORKER[0], SEED_GRID_WORKER[1])
        else:
            self.person(code, "grid_worker", f"gw.{code}")

    def build(self, plan: list) -> None:
        r = self.rng
        self.unit(CITY_CODE, CITY_NAME, "city", "市", None, 32.009, 112.122)
        self.centre_staff(CITY_CODE, "city")
        self.person(CITY_CODE, "admin", "admin")  # process versions (web /admin, CLI)
        used_townships: set[str] = set()
        for code6, cname, ckind, clat, clng, townships in plan:
            ccode = code6 + "000000"
            self.unit(ccode, cname, "county", ckind, CITY_CODE, clat, clng)
            self.centre_staff(ccode, "county")
            spread = 0.04 if ckind == "开发区" else 0.15
            for seq, tkind, tfixed, villages in townships:
                tcode = f"{code6}{seq:03d}000"
                tname = tfixed or self.township_name(tkind, used_townships)
                tlat, tlng = clat + r.uniform(-spread, spread), clng + r.uniform(-spread, spread)
                self.unit(tcode, tname, "township", tkind, ccode, tlat, tlng)
                self.centre_staff(tcode, "township")
                used_villages: set[str] = set()
                for vseq, vkind, vfixed, grids in villages:
                    vcode = f"{code6}{seq:03d}{vseq:03d}"
                    vname = vfixed or self.village_name(vkind, used_villages)
                    vlat, vlng = tlat + r.uniform(-0.04, 0.04), tlng + r.uniform(-0.04, 0.04)
                    self.unit(vcode, vname, "village", vkind, tcode, vlat, vlng)
                    self.village_staff(vcode)
                    for g in grids:
                        gcode = f"{vcode}{g:03d}"
                        glat, glng = vlat + r.uniform(-0.006, 0.006), vlng + r.uniform(-0.006, 0.006)
                        self.unit(gcode, grid_name(g), "grid", "网格", vcode, glat, glng)
                        self.grid_staff(gcode)


# ---------------------------------------------------------------------------------------------
# Public API


def counts(s: Session) -> dict:
    """Units per level, staff and active roles currently in the database."""
    out = dict.fromkeys(LEVELS, 0)
    for level, n in s.execute(select(OrgUnit.level, func.count()).group_by(OrgUnit.level)):
        out[level] = n
    out["units"] = sum(out[lv] for lv in LEVELS)
    out["staff"] = s.scalar(select(func.count()).select_from(Staff)) or 0
    out["roles"] = s.scalar(select(func.count()).select_from(StaffRole)) or 0
    return out


def build(size: str, seed: int, now: datetime) -> _Builder:
    """Draw the whole demo in memory (units, staff, roles as row dicts) without touching a database."""
    if size not in ("full", "small"):
        raise ValueError(f"size must be 'full' or 'small', not {size!r}")
    rng = random.Random(seed)
    b = _Builder(rng, now)
    b.build(_full_plan(rng) if size == "full" else _small_plan())
    return b


def generate(
    target: Session | Database,
    size: str = "full",
    seed: int = 42,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> dict:
    """Create the demo organisation; returns counts per level plus staff and roles.

    Deterministic for a given seed and size. Does nothing when any unit already exists
    (the returned dict then has `created` False and the existing counts). Given a Database
    it runs in one write transaction; given a Session the caller commits.
    `progress(done, total)` is called after each inserted chunk of rows.
    """
    if isinstance(target, Database):
        with target.write() as s:
            return generate(s, size, seed, progress, now)
    s = target
    if s.scalar(select(OrgUnit.code).limit(1)) is not None:
        return {**counts(s), "created": False}

    b = build(size, seed, now or clock.now())
    from grid.org import boundaries  # nested Voronoi outlines; each unit's point moves inside its own

    boundaries.write_demo(s, b.units, (SEED_COUNTY, SEED_TOWNSHIP, SEED_VILLAGE, SEED_GRID))
    total = len(b.units) + len(b.staff) + len(b.roles)
    done = 0
    for model, rows in ((OrgUnit, b.units), (Staff, b.staff), (StaffRole, b.roles)):
        for i in range(0, len(rows), CHUNK):
            chunk = rows[i:i + CHUNK]
            s.execute(insert(model), chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    s.flush()
    out = dict.fromkeys(LEVELS, 0)
    for u in b.units:
        out[u["level"]] += 1
    out.update(units=len(b.units), staff=len(b.staff), roles=len(b.roles), created=True)
    return out


def add_departments(target: Session | Database) -> int:
    """Add the demo's functional departments (level `department`) and their handlers to a generated
    city; returns how many were added (none again, nor where their township or county is missing)."""
    if isinstance(target, Database):
        with target.write() as s:
            return add_departments(s)
    from grid.org import service as org  # noqa: PLC0415 - service imports this package's models only

    s, added = target, 0
    for parent, suffix, name in DEMO_DEPARTMENTS:
        code = parent + suffix
        if s.get(OrgUnit, parent) is None or s.get(OrgUnit, code) is not None:
            continue
        org.add_unit(s, code, name, DEPARTMENT, "部门", parent_code=parent)
        for n in (1, 2):
            st = org.create_staff(s, f"dept{n}.{code}", _DEPT_NAMES[(added * 2 + n - 1) % len(_DEPT_NAMES)],
                                  password_hash=demo_password_hash())
            org.assign_role(s, st.id, code, "department_handler", title="承办人")
        added += 1
    return added


_DEPT_NAMES = ["周建国", "吴海燕", "郑立新", "王晓红", "冯志强", "陈玉兰", "褚卫东", "卫春梅", "蒋德明", "沈丽娟"]


DEMO_LEVELS = [
    ("grid", SEED_GRID, ["grid_worker"]),
    ("village", SEED_VILLAGE, ["grid_head", "mediator", "supervisor"]),
    ("township", SEED_TOWNSHIP, ["dispatcher", "mediator", "supervisor"]),
    ("county", SEED_COUNTY, ["dispatcher", "mediator", "supervisor", "operator"]),
    ("city", CITY_CODE, ["dispatcher", "mediator", "supervisor", "operator", "admin"]),
]


def demo_accounts(target: Database | Session) -> list[tuple[str, str, str, str]]:
    """One sample login per role per level along the seed chain (檀溪社区第十五网格 upward):
    (level, unit name, role, username). All use DEMO_PASSWORD."""
    if isinstance(target, Database):
        with target.read() as s:
            return demo_accounts(s)
    s = target
    out = []
    for level, code, roles in DEMO_LEVELS:
        unit = s.get(OrgUnit, code)
        if unit is None:
            continue
        for role in roles:
            username = s.scalar(
                select(Staff.username)
                .join(StaffRole, StaffRole.staff_id == Staff.id)
                .where(StaffRole.unit_code == code, StaffRole.role == role, StaffRole.active.is_(True),
                       Staff.active.is_(True))
                .order_by(StaffRole.id)
                .limit(1)
            )
            if username:
                out.append((level, unit.name, role, username))
    return out
