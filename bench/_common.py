"""What several benchmarks share: a scratch database of one dialect (a SQLite file in a temporary folder,
or a PostgreSQL database created on a server and dropped after), so each benchmark runs on its own data
and leaves nothing behind."""
from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from collections.abc import Callable
from datetime import timedelta
from typing import NamedTuple

from grid.org.demo import SEED_GRID
from tests.pg_admin import admin_engine, create_database, drop_database

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"

__all__ = ["PG_DEFAULT", "Relocator", "Scratch", "admin_engine"]


class Scratch:
    """A scratch database: `url`, and for SQLite `tmp` (the folder) and `path` (the file); `close()` removes it.

    `prefix` names the folder (`<prefix>_…`) and the PostgreSQL database (`<prefix>_<pid>`).
    """

    def __init__(self, dialect: str, pg_base: str | None, prefix: str, filename: str = "bench.sqlite"):
        self.dialect, self.pg_base = dialect, pg_base
        self.tmp: str | None = None
        self.pg_name: str | None = None
        if dialect == "sqlite":
            self.tmp = tempfile.mkdtemp(prefix=f"{prefix}_")
            self.path = os.path.join(self.tmp, filename)
            self.url = f"sqlite:///{self.path}"
        else:
            self.pg_name = f"{prefix}_{os.getpid()}"
            self.url = create_database(pg_base, self.pg_name, replace=True)

    def close(self) -> None:
        """Remove the folder or drop the database (dispose of engines on it first)."""
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.pg_name:
            drop_database(self.pg_base, self.pg_name)


# the units of the seed case's chain (its grid up to the city), by level
SEED_CHAIN = {SEED_GRID: "grid", "420602003005": "village", "420602003000": "township",
              "420602000000": "county", "420600000000": "city"}
LEVELS = ["city", "county", "township", "village", "grid"]


class Draw(NamedTuple):
    stage: str
    grid_code: str
    grid_path: str
    units: dict[str, str]
    remap: Callable[[str | None], str | None]
    age: timedelta


OPEN_STAGES = ("reported", "dispatched", "escalated", "resolved")


class Relocator:
    """Moves copies of the seed grid's template cases to other grids (the benchmarks' bulk clones).

    `users` maps every username to its staff id, `grids` lists every grid's (code, path), `stages`
    weighs the template stages. `draw(rng, hot)` picks a copy: its stage, grid (the seed grid for a
    `hot` share), how long ago it was reported, and, from `at(grid path)`, the seed chain's unit codes
    mapped to that grid's chain and `remap(staff_id)`, which maps the seed chain's staff (jiangranran,
    qiuyun, `<role>.<unit>`) to the same posts there.
    """

    def __init__(self, users: dict[str, str], grids: list[tuple[str, str]], stages: dict[str, float]):
        self.users, self.names = users, {v: k for k, v in users.items()}
        self.grids, self.seed_grid = grids, next(g for g in grids if g[0] == SEED_GRID)
        self.stages, self.weights = list(stages), list(stages.values())

    def draw(self, rng: random.Random, hot: float) -> Draw:
        stage = rng.choices(self.stages, self.weights)[0]
        gcode, gpath = self.seed_grid if rng.random() < hot else rng.choice(self.grids)
        units, remap = self.at(gpath)
        age = timedelta(days=rng.uniform(0, 12) if stage in OPEN_STAGES else rng.uniform(20, 720))
        return Draw(stage, gcode, gpath, units, remap, age)

    def at(self, grid_path: str) -> tuple[dict[str, str], Callable[[str | None], str | None]]:
        chain = dict(zip(LEVELS, [p for p in grid_path.split("/") if p], strict=True))
        units = {code: chain[level] for code, level in SEED_CHAIN.items()}

        def remap(sid):
            if not sid or sid not in self.names:
                return sid
            name = self.names[sid]
            if name == "jiangranran":
                return self.users.get(f"gw.{chain['grid']}", sid)
            if name == "qiuyun":
                return self.users.get(f"head.{chain['village']}", sid)
            m = re.match(r"^(\w+)\.(\d+)$", name)
            if m and m.group(2) in SEED_CHAIN:
                return self.users.get(f"{m.group(1)}.{chain[SEED_CHAIN[m.group(2)]]}") or sid
            return sid

        return units, remap
