"""The sandbox: escapes fail clearly, runaway code stops, helpers work."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine import sandbox
from engine.calendar import WorkCalendar
from engine.errors import ScriptError

ESCAPES = [
    ("__import__('os')", '"__import__" is an invalid variable name'),
    ("open('/etc/passwd').read()", "open() is not available in the sandbox"),
    ("().__class__.__base__.__subclasses__()", '"__subclasses__" is an invalid attribute name'),
    ("[c for c in ().__class__.__base__.__subclasses__()]", '"__class__" is an invalid attribute name'),
    ("getattr((), '__class__')", "getattr() is not available in the sandbox"),
    ("'{0.__class__}'.format(1)", "format*() methods of `str` is not safe"),
]


@pytest.mark.parametrize("expr,message", ESCAPES)
def test_expression_escapes_fail_clearly(expr, message):
    with pytest.raises(Exception) as ei:
        sandbox.evaluate(expr)
    assert message in str(ei.value)


@pytest.mark.parametrize("script", ["import os", "from os import path", "import subprocess\nx = 1"])
def test_import_statement_refused(script):
    env = sandbox.RestrictedEnvironment()
    with pytest.raises(ScriptError, match="import is not allowed"):
        env.execute(script, {})


def test_open_and_dunder_in_scripts_fail():
    env = sandbox.RestrictedEnvironment()
    with pytest.raises(ScriptError, match=r"open\(\) is not available in the sandbox"):
        env.execute("data = open('/etc/passwd').read()", {})
    with pytest.raises(NameError, match="deadline"):  # a missing variable stays a plain NameError
        env.execute("x = deadline", {})
    with pytest.raises(ScriptError, match="sandbox"):
        env.execute("x = ().__class__", {})


def test_endless_loop_is_stopped():
    """The budget stops it (the test returns at all); how fast is bench/sandbox_bench.py's business."""
    env = sandbox.RestrictedEnvironment()
    with pytest.raises(sandbox.ScriptBudgetExceeded):
        env.execute("n = 0\nwhile True:\n    n = n + 1", {})
    with pytest.raises(sandbox.ScriptBudgetExceeded):
        env.execute("x = sum(range(10**9))", {})


def test_memory_bombs_are_refused():
    env = sandbox.RestrictedEnvironment()
    for script in ["s = 'a' * 10**10", "x = [0] * (10**9)", "n = 9 ** (10**8)", "n = 1 << (10**9)",
                   "s = 'ab'\nfor i in range(40):\n    s *= 2"]:
        with pytest.raises(sandbox.ScriptBudgetExceeded):
            env.execute(script, {})
    ctx: dict = {}
    env.execute("s = '-' * 10\nn = 2 ** 10\nm = 3 * 4", ctx)
    assert ctx == {"s": "----------", "n": 1024, "m": 12}


def test_ordinary_scripts_and_helpers_work():
    env = sandbox.RestrictedEnvironment()
    ctx = {"parties": [{"weight": 3}, {"weight": 4}], "level_idx": 0}
    env.execute("total = sum(p['weight'] for p in parties)\nlevel_idx += 1\nnames = sorted(['b', 'a'])", ctx)
    assert ctx["total"] == 7 and ctx["level_idx"] == 1 and ctx["names"] == ["a", "b"]
    assert "emit" not in ctx and "now" not in ctx, "helpers are not copied into task data"
    assert sandbox.evaluate("level_idx < 3 and total > 5", ctx) is True


def test_workdays_calendar():
    cal = WorkCalendar(holidays={date(2020, 10, d) for d in range(1, 9)}, workdays={date(2020, 9, 27), date(2020, 10, 10)})
    fri = datetime(2020, 9, 25, 2, 0, tzinfo=UTC)  # Friday 10:00 in Beijing
    # Sat 26 off, Sun 27 is a make-up working day, Mon 28, Tue 29, Wed 30, then the holiday to Oct 8
    assert cal.add_workdays(fri, 1).isoformat() == "2020-09-27T10:00:00+08:00"
    assert cal.add_workdays(fri, 4).isoformat() == "2020-09-30T10:00:00+08:00"
    assert cal.add_workdays(fri, 5).isoformat() == "2020-10-09T10:00:00+08:00"
    assert cal.add_workdays(fri, 6).isoformat() == "2020-10-10T10:00:00+08:00", "Saturday 10 Oct is worked"
    assert not cal.is_workday(date(2020, 10, 11))


IN_PROCESS = [  # trivially bounded: no loops, no method calls, nothing that amplifies
    ("eval", "outcome == 'resolved'"), ("eval", "level_idx < len(levels) - 1"), ("eval", '(level) == ("village")'),
    ("eval", '"PT1H"'), ("eval", "due_at"), ("eval", "not verification['satisfied']"),
    ("eval", "outcome in ('cannot_resolve', 'overdue')"), ("eval", "a + b + c"), ("eval", "x[1:3]"),
    ("exec", "level = levels[level_idx]\ncurrent_unit = level_units[level_idx]"),
    ("exec", "rework_count = rework_count + 1\nemit('rework', level=level, count=rework_count)"),
    ("exec", "visit_no += 1\nlast_visit_at = now()\nif visit_no > 3:\n    done = True\nelse:\n    done = False"),
    ("exec", "mediations = []\nratio = total / count"),
]
TO_THE_POOL = [  # anything that calls, loops or may amplify
    ("eval", "any(m['outcome'] == 'resolved' for m in mediations)"), ("eval", "workdays(3)"),
    ("eval", "name.upper()"), ("eval", "sorted(x)"), ("eval", "x * 2"), ("eval", "2 ** n"), ("eval", "'%s' % x"),
    ("eval", "f'{x}'"), ("eval", "[i for i in x]"), ("eval", "(lambda: 1)()"),
    ("exec", "s = s + s"), ("exec", "y = [x, x]"), ("exec", "d['k'] = d"), ("exec", "for i in range(3):\n    n = i"),
    ("exec", "while True:\n    pass"), ("exec", "x = days_after(now(), 3)"),
    ("exec", "now = workdays\nx = now(10)"), ("exec", "try:\n    x = 1\nexcept Exception:\n    x = 2"),
]


@pytest.mark.parametrize("mode,src", IN_PROCESS)
def test_trivially_bounded_code_stays_in_process(mode, src):
    assert sandbox.runs_in_process(sandbox.compile_unit(src, mode))


@pytest.mark.parametrize("mode,src", TO_THE_POOL)
def test_everything_else_goes_to_a_worker(mode, src):
    assert not sandbox.runs_in_process(sandbox.compile_unit(src, mode))


def test_the_guards_also_hold_in_process():
    """Code that must stay in process (a helper registered in_process=True) keeps the size guards."""
    for src in ["n = pow(3, 200000)", "s = 'ab'.ljust(10**9)", "s = ('a' * 1000).replace('a', 'a' * 2000)",
                "s = '%*d' % (10**9, 1)", "n = 10**9\ns = f'{1:>{n}}'"]:
        with pytest.raises(sandbox.ScriptBudgetExceeded):
            sandbox._run_here(sandbox.compile_unit(src, "exec"), {}, None, {})


def test_long_chained_scripts_compile_and_huge_ones_are_refused():
    """RestrictedPython 9.0 re-positioned whole subtrees, so chained calls compiled in quadratic time
    (seconds for a page of them); too deep a chain or too long a script is refused, not compiled."""
    chain = "s = s" + ".replace('a', 'b')" * 50
    unit = sandbox.compile_unit("\n".join([chain] * 150), "exec")
    assert not unit.fast
    with pytest.raises(ScriptError, match="too long"):
        sandbox.compile_unit("\n".join([chain] * 250), "exec")
    with pytest.raises(ScriptError, match="nested too deeply"):
        sandbox.compile_unit("s = s" + ".replace('a', 'b')" * 400, "exec")
