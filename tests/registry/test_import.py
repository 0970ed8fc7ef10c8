"""Import and export of the registry (CSV and XLSX): all-or-nothing validation naming each bad row,
idempotent re-imports, changes recorded as events, rights, and the round trip through export."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from grid.errors import Forbidden
from grid.registry import export as registry_export
from grid.registry import households, rules, visits, writer
from grid.registry import pages as registry_pages
from grid.registry.models import Building, Household, ImportBatch, Resident, ResidentEvent, SpecialFlag
from tests.registry_helpers import FAR_GRID, OTHER_GRID, SEED_GRID, make_id, open_items, sid

HEADER = ["网格编码", "楼栋地址", "纬度", "经度", "门牌号", "姓名", "身份证号", "联系电话", "出生日期", "性别",
          "与户主关系", "状态"]
A = make_id("420602", date(1970, 5, 1), 11)
B = make_id("420602", date(1972, 3, 8), 22)
C = make_id("420602", date(2001, 9, 9), 33)
D = make_id("420602", date(1948, 1, 2), 44)
ROWS = [
    [SEED_GRID, "檀溪路1号1栋", "32.03", "112.14", "1-101", "张建国", A, "13812341234", "1970-05-01", "男", "户主", "在住"],
    [SEED_GRID, "檀溪路1号1栋", "32.03", "112.14", "1-101", "李秀英", B, "", "", "女", "配偶", ""],
    [SEED_GRID, "檀溪路1号1栋", "32.03", "112.14", "1-101", "张伟", C, "15912345678", "", "", "子女", "在住"],
    [SEED_GRID, "檀溪路1号1栋", "32.03", "112.14", "2-301", "王桂英", D, "", "", "", "户主", "在住"],
    [SEED_GRID, "檀溪路1号1栋", "32.03", "112.14", "3-502", "", "", "", "", "", "", ""],  # an empty household
    [OTHER_GRID, "檀溪路9号", "", "", "", "", "", "", "", "", "", ""],  # an empty building
]


def write_csv(path, rows, header=HEADER, encoding="utf-8-sig"):
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def write_xlsx(path, rows, header=HEADER, numeric_ids=False):
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        r = list(r)
        if numeric_ids and r[6]:
            r[6] = int(r[6][:15])
        ws.append(r)
    wb.save(path)
    return path


def counts(svc) -> tuple[int, int, int]:
    with svc.db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in (Building, Household, Resident))


def test_a_csv_import_creates_buildings_households_and_residents(reg, tmp_path, fake_clock):
    seen = []
    res = writer.import_file(reg, write_csv(tmp_path / "grid.csv", ROWS), actor="tester",
                             progress=lambda d, t, n: seen.append((d, t, n)))
    assert res.ok, res.errors
    assert res.rows == 6 and res.counts == {"buildings_created": 2, "buildings_updated": 0, "households_created": 3,
                                            "residents_created": 4, "residents_updated": 0, "residents_unchanged": 0}
    assert counts(reg) == (2, 3, 4)
    assert seen[-1][0] == seen[-1][1] and seen[-1][2] == "done"
    with reg.db.read() as s:
        b = s.scalar(select(ImportBatch).where(ImportBatch.id == res.batch_id))
        assert (b.status, b.actor, b.rows, b.format) == ("done", "tester", 6, "csv")
        r = rules.find_by_id_number(s, B)
        assert (r.name, r.sex, r.birth_date, r.relation, r.status, r.phone, r.created_batch_id) == (
            "李秀英", "F", date(1972, 3, 8), "spouse", "living", None, res.batch_id)
        assert r.created_at == r.updated_at == fake_clock.current
    view = registry_pages.grid_overview(reg, sid(reg, "jiangranran"), SEED_GRID)
    (bv,) = view.buildings
    assert [(h.door_no, h.head.name if h.head else None, len(h.members)) for h in bv.households] == [
        ("1-101", "张建国", 3), ("2-301", "王桂英", 1), ("3-502", None, 0)]
    assert (bv.lat, bv.lng) == (32.03, 112.14)


def test_importing_the_same_file_twice_creates_no_duplicates(reg, tmp_path):
    path = write_csv(tmp_path / "grid.csv", ROWS)
    first = writer.import_file(reg, path)
    again = writer.import_file(reg, path)
    assert first.ok and again.ok
    assert again.counts == {"buildings_created": 0, "buildings_updated": 0, "households_created": 0,
                            "residents_created": 0, "residents_updated": 0, "residents_unchanged": 4}
    assert counts(reg) == (2, 3, 4)
    with reg.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ResidentEvent)) == 0
        assert [b.status for b in s.scalars(select(ImportBatch).order_by(ImportBatch.id))] == ["done", "done"]
    xlsx = writer.import_file(reg, write_xlsx(tmp_path / "grid.xlsx", ROWS))  # the same data as XLSX
    assert xlsx.ok and xlsx.counts["residents_unchanged"] == 4 and counts(reg) == (2, 3, 4)


def test_a_bad_row_imports_nothing_and_is_named(reg, tmp_path):
    rows = [list(r) for r in ROWS]
    rows[2][6] = C[:17] + ("0" if C[17] != "0" else "1")  # line 4: a wrong check digit
    rows[3][9] = "男"  # line 5: D is a woman's ID number
    rows.append([SEED_GRID, "檀溪路1号1栋", "32.03", "112.14", "1-101", "复制", A, "", "", "", "子女", ""])  # line 8
    rows.append(["999", "无此地", "", "", "1", "某", make_id("420602", date(1990, 1, 1), 1), "", "", "", "户主", ""])
    rows.append([SEED_GRID, "檀溪路2号", "", "", "1", "某某", make_id("420602", date(1990, 1, 1), 3), "123", "",
                 "", "朋友", "离开"])  # line 10: phone, relation, status
    res = writer.import_file(reg, write_csv(tmp_path / "bad.csv", rows))
    assert not res.ok
    got = [(e.line, e.column, e.reason) for e in res.errors]
    assert got == [
        (4, "身份证号", "the check digit is wrong"),
        (5, "性别", "does not match the ID number"),
        (8, "身份证号", "the same ID number is on line 2"),
        (9, "网格编码", "no such grid"),
        (10, "联系电话", "not a mobile (11 digits) or landline number"),
        (10, "与户主关系", got[5][2]),
        (10, "状态", "在住, 迁出 or 死亡"),
    ]
    assert "户主" in got[5][2] and res.error_count == 7
    assert counts(reg) == (0, 0, 0)
    assert "line 4, 身份证号: the check digit is wrong" in [str(e) for e in res.errors]
    with reg.db.read() as s:
        (b,) = s.scalars(select(ImportBatch))
        assert b.status == "rejected" and b.errors[0] == {"line": 4, "column": "身份证号",
                                                          "reason": "the check digit is wrong"}


def test_errors_only_the_database_can_tell_also_import_nothing(reg, tmp_path):
    assert writer.import_file(reg, write_csv(tmp_path / "a.csv", ROWS[:2])).ok
    rows = [[SEED_GRID, "檀溪路1号1栋", "", "", "1-101", "新户主", make_id("420602", date(1980, 1, 1), 5), "", "", "",
             "户主", ""],  # the household already has a head
            [SEED_GRID, "檀溪路7号", "", "", "1", "某", make_id("420602", date(1980, 1, 1), 7), "", "", "", "户主", ""]]
    res = writer.import_file(reg, write_csv(tmp_path / "b.csv", rows))
    assert not res.ok
    assert [(e.line, e.column) for e in res.errors] == [(2, "与户主关系")]
    assert "already has a head" in res.errors[0].reason
    assert counts(reg) == (1, 1, 2)
    moved = [[OTHER_GRID, "檀溪路1号1栋", "", "", "1", "张建国", A, "", "", "", "户主", ""]]
    res = writer.import_file(reg, write_csv(tmp_path / "c.csv", moved))
    assert [(e.line, e.column, e.reason) for e in res.errors] == [
        (2, "网格编码", f"this address is registered in grid {SEED_GRID}")]


def test_a_changed_file_updates_and_records_each_change(reg, tmp_path):
    assert writer.import_file(reg, write_csv(tmp_path / "a.csv", ROWS)).ok
    rows = [list(r) for r in ROWS]
    rows[0][7] = "13900000000"  # a new phone
    rows[3][11] = "死亡"  # died
    rows[2][4] = "3-502"  # the son moved into the empty household
    rows[2][10] = "户主"
    res = writer.import_file(reg, write_csv(tmp_path / "b.csv", rows), actor="clerk")
    assert res.ok, res.errors
    assert res.counts["residents_updated"] == 3 and res.counts["residents_unchanged"] == 1
    with reg.db.read() as s:
        evs = {e.kind: e for e in s.scalars(select(ResidentEvent))}
    assert set(evs) == {"update", "death", "transfer"}
    assert rules.opened(evs["update"].before) == {"phone": "13812341234"}
    assert rules.opened(evs["update"].after)["phone"] == "13900000000"
    assert evs["death"].before == {"status": "living"} and evs["death"].after["status"] == "deceased"
    assert evs["transfer"].before["relation"] == "child" and evs["transfer"].after["relation"] == "head"
    assert evs["update"].actor == "clerk" and evs["update"].note.endswith("line 2")


def test_rights_and_the_grid_option(reg, tmp_path):
    gw = sid(reg, "jiangranran")
    path = write_csv(tmp_path / "grid.csv", ROWS)
    res = writer.import_file(reg, path, staff_id=gw)
    assert [(e.line, e.reason) for e in res.errors] == [(7, "you may not change this grid")]
    assert counts(reg) == (0, 0, 0)
    res = writer.import_file(reg, write_csv(tmp_path / "mine.csv", ROWS[:5]), staff_id=gw)
    assert res.ok and counts(reg) == (1, 3, 4)
    with pytest.raises(Forbidden):
        writer.import_file(reg, path, staff_id=gw, grid_code=FAR_GRID)
    no_grid = [r[1:] for r in ROWS[:2]]
    res = writer.import_file(reg, write_csv(tmp_path / "g.csv", [["檀溪路5号", "", "", "1"]],
                                                     header=["楼栋地址", "纬度", "经度", "门牌号"]),
                                      grid_code=SEED_GRID)
    assert res.ok and res.counts["buildings_created"] == 1
    res = writer.import_file(reg, write_csv(tmp_path / "h.csv", [ROWS[5]]), grid_code=SEED_GRID)
    assert [(e.line, e.column) for e in res.errors] == [(2, "网格编码")]
    res = writer.import_file(reg, write_csv(tmp_path / "i.csv", no_grid, header=HEADER[1:]))
    assert [(e.line, e.column, e.reason) for e in res.errors] == [(1, "网格编码", "missing column")]


def test_headers_encodings_and_xlsx_pitfalls(reg, tmp_path):
    english = ["grid_code", "address", "lat", "lng", "door_no", "name", "id_number", "phone", "birth_date", "sex",
               "relation", "status"]
    rows = [[SEED_GRID, "檀溪路1号1栋", "", "", "1-101", "张建国", A, "", "", "M", "head", "living"]]
    assert writer.import_file(reg, write_csv(tmp_path / "en.csv", rows, header=english)).ok
    gbk = write_csv(tmp_path / "gbk.csv", [[SEED_GRID, "檀溪路1号1栋", "", "", "1-101", "李秀英", B, "", "", "女", "配偶",
                                             "在住"]], encoding="gb18030")
    assert writer.import_file(reg, gbk).ok and counts(reg)[2] == 2
    res = writer.import_file(reg, write_csv(tmp_path / "x.csv", rows, header=HEADER[:-1] + ["备注"]))
    assert [(e.line, e.column) for e in res.errors] == [(1, "备注")]
    res = writer.import_file(reg, write_xlsx(tmp_path / "num.xlsx", ROWS[:1], numeric_ids=True))
    assert [(e.line, e.column) for e in res.errors] == [(2, "身份证号")]
    assert "format the column as text" in res.errors[0].reason
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert not writer.import_file(reg, empty).ok
    check = writer.import_file(reg, write_csv(tmp_path / "dry.csv", ROWS), dry_run=True)
    assert check.ok and check.dry_run and check.counts["residents_created"] == 2 and counts(reg) == (1, 1, 2)


def test_export_round_trip(reg, tmp_path):
    assert writer.import_file(reg, write_csv(tmp_path / "a.csv", ROWS)).ok
    gw = sid(reg, "jiangranran")
    households.register_death(reg, gw, _rid(reg, D))
    out = tmp_path / "out.csv"
    n = registry_export.export_file(reg, out, "csv")
    assert n == 6
    text = out.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == HEADER and rows[1][1] == "檀溪路9号" and rows[5][5:] == ["王桂英", D, "", "1948-01-02", "女", "户主", "死亡"]
    again = writer.import_file(reg, out)
    assert again.ok and again.counts["residents_unchanged"] == 4 and again.counts["residents_updated"] == 0
    xlsx = tmp_path / "out.xlsx"
    assert registry_export.export_file(reg, xlsx, "xlsx", staff_id=gw, grid_code=SEED_GRID) == 5
    ws = load_workbook(xlsx, read_only=True).worksheets[0]
    cells = [list(r) for r in ws.iter_rows(values_only=True)]
    assert cells[1][6] == A and isinstance(cells[1][6], str)
    assert writer.import_file(reg, xlsx).counts["residents_unchanged"] == 4
    with pytest.raises(Forbidden):
        registry_export.export_file(reg, tmp_path / "no.csv", staff_id=gw, grid_code=OTHER_GRID)
    with reg.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ImportBatch).where(ImportBatch.status == "exported")) == 2


def test_an_import_that_moves_or_ends_a_flagged_person_tells_the_schedule(reg, tmp_path):
    assert writer.import_file(reg, write_csv(tmp_path / "a.csv", ROWS)).ok
    gw = sid(reg, "jiangranran")
    fid = visits.flag(reg, gw, _rid(reg, A), "released", "medium")
    fid2 = visits.flag(reg, gw, _rid(reg, D), "elderly_alone", "high")
    rows = [[OTHER_GRID, "檀溪路9号", "", "", "1", "张建国", A, "", "", "", "户主", ""],
            [SEED_GRID, "檀溪路1号1栋", "", "", "2-301", "王桂英", D, "", "", "", "户主", "迁出"]]
    res = writer.import_file(reg, write_csv(tmp_path / "b.csv", rows))
    assert res.ok, res.errors
    with reg.db.read() as s:
        f, f2 = s.get(SpecialFlag, fid), s.get(SpecialFlag, fid2)
        assert (f.grid_code, f.active) == (OTHER_GRID, True) and (f2.active, f2.end_reason) == (False,
                                                                                               "changed by import")
    (wi,) = open_items(reg, f.instance_id, "visit")
    assert wi.unit_id == OTHER_GRID


def _rid(svc, idn: str) -> int:
    with svc.db.read() as s:
        return rules.find_by_id_number(s, idn).id
