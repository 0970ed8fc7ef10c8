"""Registry counts per grid, kept by the database: buildings, households, living residents and
active special-population flags, so that a leader's summary of 9,761 grids (and of every unit
above them) reads one small row per grid instead of counting 719,000 residents.

Triggers on `building`, `household`, `resident` and `special_flag` keep `registry_count` in step
in the statement's own transaction, whoever writes (the service functions, the import's bulk
Core inserts, the demo city, a repair by hand), on SQLite and PostgreSQL alike. `rebuild`
recomputes every row from the tables (the migration uses it; so can a repair).
"""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import Integer, String, delete, event, func, insert, literal, select, union_all
from sqlalchemy.orm import Mapped, Session, mapped_column

from engine.db import Base
from grid.registry.models import Building, Household, Resident, SpecialFlag

COLUMNS = ("buildings", "households", "residents", "flags")


class RegistryCount(Base):
    """How many buildings, households, living residents and active flags one grid has."""

    __tablename__ = "registry_count"
    grid_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    buildings: Mapped[int] = mapped_column(Integer, default=0)
    households: Mapped[int] = mapped_column(Integer, default=0)
    residents: Mapped[int] = mapped_column(Integer, default=0)
    flags: Mapped[int] = mapped_column(Integer, default=0)


# ---- triggers ------------------------------------------------------------------------------------
def _add(grid: str, column: str, delta: str, where: str | None = None) -> str:
    """Add `delta` to `column` of the grid's row, creating the row at need (an upsert; its SELECT
    carries a WHERE, which SQLite needs to parse ON CONFLICT after a SELECT)."""
    values = ", ".join(delta if c == column else "0" for c in COLUMNS)
    return (f"INSERT INTO registry_count (grid_code, {', '.join(COLUMNS)}) SELECT {grid}, {values} "
            f"WHERE {where or 'true'} "
            f"ON CONFLICT (grid_code) DO UPDATE SET {column} = registry_count.{column} + ({delta})")


def _sub(grid: str, column: str, delta: str = "1", where: str | None = None) -> str:
    cond = f" AND {where}" if where else ""
    return f"UPDATE registry_count SET {column} = {column} - ({delta}) WHERE grid_code = {grid}{cond}"


def _of_building(ref: str) -> str:
    return f"(SELECT grid_code FROM building WHERE id = {ref}.building_id)"


def _households_of(ref: str) -> str:
    return f"(SELECT count(*) FROM household WHERE building_id = {ref}.id)"


# (table, event, WHEN condition or None, statements): one list for both databases
_RULES: list[tuple[str, str, str | None, list[str]]] = [
    ("building", "INSERT", None, [_add("NEW.grid_code", "buildings", "1")]),
    ("building", "DELETE", None, [_sub("OLD.grid_code", "buildings")]),
    ("building", "UPDATE OF grid_code", "OLD.grid_code <> NEW.grid_code", [
        _sub("OLD.grid_code", "buildings"), _sub("OLD.grid_code", "households", _households_of("NEW")),
        _add("NEW.grid_code", "buildings", "1"), _add("NEW.grid_code", "households", _households_of("NEW"))]),
    ("household", "INSERT", None, [_add(_of_building("NEW"), "households", "1")]),
    ("household", "DELETE", None, [_sub(_of_building("OLD"), "households")]),
    ("household", "UPDATE OF building_id", "OLD.building_id <> NEW.building_id", [
        _sub(_of_building("OLD"), "households"), _add(_of_building("NEW"), "households", "1")]),
    ("resident", "INSERT", "NEW.status = 'living'", [_add("NEW.grid_code", "residents", "1")]),
    ("resident", "DELETE", "OLD.status = 'living'", [_sub("OLD.grid_code", "residents")]),
    ("resident", "UPDATE OF status, grid_code",
     "OLD.status <> NEW.status OR OLD.grid_code <> NEW.grid_code", [
         _sub("OLD.grid_code", "residents", where="OLD.status = 'living'"),
         _add("NEW.grid_code", "residents", "1", where="NEW.status = 'living'")]),
    ("special_flag", "INSERT", "NEW.active", [_add("NEW.grid_code", "flags", "1")]),
    ("special_flag", "DELETE", "OLD.active", [_sub("OLD.grid_code", "flags")]),
    ("special_flag", "UPDATE OF active, grid_code",
     "OLD.active <> NEW.active OR OLD.grid_code <> NEW.grid_code", [
         _sub("OLD.grid_code", "flags", where="OLD.active"),
         _add("NEW.grid_code", "flags", "1", where="NEW.active")]),
]


def _name(table: str, ev: str) -> str:
    return f"trg_registry_count_{table}_{ev.split()[0].lower()}"


def trigger_ddl(dialect: str) -> list[str]:
    """The statements that create the triggers on this database."""
    out = []
    for table, ev, when, stmts in _RULES:
        name = _name(table, ev)
        if dialect == "sqlite":
            cond = f" WHEN {when}" if when else ""
            body = "".join(f"  {x};\n" for x in stmts)
            out.append(f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {ev} ON {table} FOR EACH ROW{cond}\n"
                       f"BEGIN\n{body}END")
        else:
            body = "".join(f"  {x};\n" for x in stmts)
            out.append(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
                       f"BEGIN\n{body}  RETURN NULL;\nEND $$")
            cond = f" WHEN ({when.replace('<>', 'IS DISTINCT FROM')})" if when else ""
            out.append(f"CREATE TRIGGER {name} AFTER {ev} ON {table} FOR EACH ROW{cond} EXECUTE FUNCTION {name}()")
    return out


def drop_ddl(dialect: str) -> list[str]:
    """The statements that drop the triggers (and their PostgreSQL functions)."""
    out = []
    for table, ev, _w, _s in _RULES:
        name = _name(table, ev)
        if dialect == "sqlite":
            out.append(f"DROP TRIGGER IF EXISTS {name}")
        else:
            out += [f"DROP TRIGGER IF EXISTS {name} ON {table}", f"DROP FUNCTION IF EXISTS {name}()"]
    return out


@event.listens_for(Base.metadata, "after_create")
def _install(target, connection, tables=(), **kw) -> None:
    """After `create_all` has made every table (not after `registry_count` alone: the triggers
    name `building` and the others, which a create order by name or by import may put later)."""
    if any(t.name == RegistryCount.__tablename__ for t in tables):
        for stmt in trigger_ddl(connection.dialect.name):
            connection.exec_driver_sql(stmt)


# ---- recomputing -----------------------------------------------------------------------------
def rebuild(s: Session) -> int:
    """Recompute every grid's row from the registry tables; returns the number of rows."""
    parts = [
        select(Building.grid_code.label("g"), func.count().label("b"), literal(0).label("h"), literal(0).label("r"),
               literal(0).label("f")).group_by(Building.grid_code),
        select(Building.grid_code, literal(0), func.count(), literal(0), literal(0))
        .join(Household, Household.building_id == Building.id).group_by(Building.grid_code),
        select(Resident.grid_code, literal(0), literal(0), func.count(), literal(0))
        .where(Resident.status == "living").group_by(Resident.grid_code),
        select(SpecialFlag.grid_code, literal(0), literal(0), literal(0), func.count())
        .where(SpecialFlag.active.is_(True)).group_by(SpecialFlag.grid_code),
    ]
    u = union_all(*parts).subquery()
    rows = s.execute(select(u.c.g, func.sum(u.c.b), func.sum(u.c.h), func.sum(u.c.r), func.sum(u.c.f))
                     .group_by(u.c.g)).all()
    s.execute(delete(RegistryCount))
    if rows:
        s.execute(insert(RegistryCount), [dict(zip(("grid_code", *COLUMNS), (g, *map(int, v)), strict=True))
                                          for g, *v in rows])
    return len(rows)


@contextmanager
def paused(s: Session):
    """Bulk loading (the demo city): the triggers dropped inside the caller's transaction, the
    counts recomputed and the triggers put back at the end of it. A row trigger per inserted
    resident costs about a third of a bulk insert on SQLite; one recount at the end costs a
    fraction of that. Other writers never see the gap: on SQLite the caller holds the write
    lock; on PostgreSQL DROP TRIGGER locks the tables until the transaction ends."""
    dialect = s.bind.dialect.name
    conn = s.connection()
    for stmt in drop_ddl(dialect):
        conn.exec_driver_sql(stmt)
    yield
    for stmt in trigger_ddl(dialect):
        conn.exec_driver_sql(stmt)
    rebuild(s)
