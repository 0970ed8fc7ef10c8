"""SQL statements per staff page request (issue 16, "make the HTTP path lean"): the task page, the
case page, the inbox and a dispatch POST read the case and work item once and pass them down, so
each stays under a ceiling; a change that reloads them again per helper fails here. Statements are
counted (not timed), on both databases. Ceilings are from bench/request_profile.py's counts with
a little room; /settings (reads no case data) is the floor."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event

from grid.cases import badges, pages
from grid.cases import service as cases
from tests.web_helpers import dispatch, login, open_items, report_case, staff_id

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
LOCK = re.compile(r'name="lock_version" value="(\d+)"')

# statements beyond the floor page's, per request (SQLite counts its BEGINs; PostgreSQL comes in lower)
CEILING = {"task GET (dispatch)": 22, "task GET (mediate)": 16, "case page": 18, "inbox": 17, "task POST": 45}


class Statements:
    def __init__(self, engine):
        self.on, self.seen = False, []
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, conn, cursor, statement, *a):
        if self.on:
            self.seen.append(" ".join(statement.split()))

    def __call__(self, fn) -> list[str]:
        self.on, self.seen = True, []
        try:
            r = fn()
        finally:
            self.on = False
        assert r.status_code in (200, 302), r.status_code
        return list(self.seen)


def _loads(seen: list[str], table: str, *keys: str) -> list[str]:
    """Statements that read one row of `table` by one of these columns (a case, a work item)."""
    return [x for x in seen if x.startswith("SELECT") and any(f"FROM {table} WHERE {table}.{k} = " in x for k in keys)]


def test_staff_pages_stay_under_their_statement_ceilings(app, svc):
    c = report_case(svc)
    guid = open_items(svc, c.id, "dispatch")[0].task_guid
    head = login(app, "qiuyun")
    for _ in range(2):  # warm: templates, specs, labels
        head.get("/settings"), head.get(f"/tasks/{guid}"), head.get(f"/cases/{c.id}"), head.get("/")
    count = Statements(svc.db.engine)
    floor = len(count(lambda: head.get("/settings")))
    got = {}
    seen = count(lambda: head.get(f"/tasks/{guid}"))
    got["task GET (dispatch)"] = len(seen) - floor
    # the case and the work item are read once, not once per helper
    assert len(_loads(seen, "dispute_case", "id", "instance_id")) == 1, _loads(seen, "dispute_case", "id", "instance_id")
    assert len(_loads(seen, "work_item", "task_guid")) == 1, _loads(seen, "work_item", "task_guid")
    got["case page"] = len(count(lambda: head.get(f"/cases/{c.id}"))) - floor
    got["inbox"] = len(count(lambda: head.get("/"))) - floor

    html = head.get(f"/tasks/{guid}").get_data(as_text=True)
    meds = [staff_id(svc, f"med{i}.420602003005") for i in (1, 2)]
    form = {"csrf_token": TOKEN.search(html).group(1), "lock_version": LOCK.search(html).group(1),
            "action": "dispatch", "dispatch_note": "请调解", "assignees": meds}
    got["task POST"] = len(count(lambda: head.post(f"/tasks/{guid}", data=form))) - floor

    med = login(app, "med1.420602003005")
    mediate = [w for w in open_items(svc, c.id, "mediate") if w.user_id == meds[0]][0].task_guid
    med.get(f"/tasks/{mediate}")
    got["task GET (mediate)"] = len(count(lambda: med.get(f"/tasks/{mediate}"))) - len(
        count(lambda: med.get("/settings")))
    over = {k: (n, CEILING[k]) for k, n in got.items() if n > CEILING[k]}
    assert not over, f"statements beyond the floor page's ({floor}), (got, ceiling): {over}"


def test_the_case_page_reads_supervision_as_the_badges_do(svc, fake_clock):
    """`pages.supervised_of` answers from the rows the case page read; `badges.supervised` asks
    the database: the same tasks, before a 督办, while its task is open, and after it is done."""
    c = report_case(svc)
    sup = staff_id(svc, "sup.420602003005")

    def same():
        page = pages.case_page(svc, sup, c.id)
        want = badges.supervised(svc, task_guids=[t.task_guid for t in page.tasks])["tasks"]
        assert page.supervised == want
        return want

    assert same() == set()
    dispatch(svc, c.id)
    assert same() == set()
    fake_clock.advance(timedelta(days=4))  # past the warning time: the 督办 task opens
    svc.runtime.sweep()
    assert open_items(svc, c.id, "supervise")
    assert same()
    cases.urge(svc, sup, c.id, "请今天务必处理")  # completes the 督办 task; the record stays
    assert same()


class Blocks(Statements):
    """Each statement with the connection checkout it ran in (a read block or a write
    transaction: one checkout each, on both databases)."""

    def __init__(self, engine):
        self.n = 0
        event.listen(engine, "checkout", self._checkout)
        super().__init__(engine)

    def _checkout(self, dbapi_conn, record, proxy):
        self.n += 1
        record.info["gridflow_test_checkout"] = self.n

    def _count(self, conn, cursor, statement, *a):
        if self.on:
            self.seen.append((conn.info.get("gridflow_test_checkout"), " ".join(statement.split())))


def _block_of(seen: list[tuple[int, str]], *parts: str) -> set[int]:
    return {block for block, stmt in seen if all(p in stmt for p in parts)}


def test_the_inbox_reads_its_cards_marks_and_unit_names_with_its_rows(app, svc):
    """The 督办 marks and urges of the cards and the names of their units come from the inbox's
    own read block, not from a block each (a block costs a BEGIN and a ROLLBACK on a pooled
    connection): the page reads its rows, its marks and its unit names in one checkout."""
    c = report_case(svc)
    assert open_items(svc, c.id, "dispatch")
    head = login(app, "qiuyun")
    head.get("/")
    seen = Blocks(svc.db.engine)(lambda: head.get("/"))
    rows = _block_of(seen, "FROM (SELECT work_item.id")
    marks = _block_of(seen, "SELECT work_item.task_guid, work_item.task_spec", "JOIN dispute_case")
    names = _block_of(seen, "SELECT org_unit.code, org_unit.name FROM org_unit")
    assert len(rows) == 1 and rows == marks == names, (rows, marks, names)
    from grid.org import accounts

    unit = open_items(svc, c.id, "dispatch")[0].unit_id
    assert accounts.unit_names(svc, [unit])[unit] in head.get("/").get_data(as_text=True)  # the card names it


def test_a_task_post_checks_and_steps_in_one_transaction(app, svc):
    """`complete_task`'s checks (who may act, the staff picked) run in the step's own write
    transaction: the work item is read where the instance is updated, not in a block before."""
    c = report_case(svc)
    guid = open_items(svc, c.id, "dispatch")[0].task_guid
    head = login(app, "qiuyun")
    html = head.get(f"/tasks/{guid}").get_data(as_text=True)
    meds = [staff_id(svc, f"med{i}.420602003005") for i in (1, 2)]
    form = {"csrf_token": TOKEN.search(html).group(1), "lock_version": LOCK.search(html).group(1),
            "action": "dispatch", "dispatch_note": "请调解", "assignees": meds}
    seen = Blocks(svc.db.engine)(lambda: head.post(f"/tasks/{guid}", data=form))
    step = _block_of(seen, "UPDATE instance SET")
    checks = _block_of(seen, "SELECT instance.version_id FROM instance")  # the staff picker's check
    assert len(step) == 1 and step <= checks, (step, checks)
    assert not open_items(svc, c.id, "dispatch")  # and the step was done
