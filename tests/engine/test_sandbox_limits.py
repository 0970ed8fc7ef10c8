"""The sandbox's hard limits: real worker processes, real RLIMIT_AS and CPU timers, real databases.

A gigabyte is stopped at the memory limit, seconds of C-level work at the CPU limit; the step becomes
an incident with a clear message, the pool replaces the worker, and the next instance and the
timer sweep go on as if nothing happened.
"""
from __future__ import annotations

import re
import resource
import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from engine import clock, sandbox, sandbox_pool
from engine.calendar import WorkCalendar
from engine.deploy import Bundle, deploy
from engine.errors import ScriptError
from engine.models import Instance
from engine.runtime import Runtime, Step
from tests.engine_helpers import FIXTURES, deploy_fixture, open_items

GIGABYTE = "s = 'a' * 999990\nparts = [s + str(i) for i in range(1100)]"  # 1.1 GB of distinct strings
_CHAIN = "s = s" + ".replace('a', 'b').replace('b', 'a')" * 35
REPLACES = "\n".join([_CHAIN] * 40)  # 2,800 replaces of 4 MB: about 10 s of C calls, 40 line events
MODPOW = "y = [pow(7, 1 << 3000, (1 << 3000) + 7) for i in range(100)]"  # 100 C calls of ~0.1 s each


def later_by(start: str, days: float) -> str:
    """A helper the worker imports by reference (module and name), as it does the domain's."""
    return (datetime.fromisoformat(start) + timedelta(days=days)).astimezone(clock.SHANGHAI).isoformat()


sandbox.register_helper("later_by", later_by)


@pytest.fixture(autouse=True)
def pool():
    p = sandbox_pool.configure()  # a fresh pool with the default limits (256 MB, 2 s)
    yield p
    sandbox_pool.shutdown()


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def test_defaults_and_environment():
    assert sandbox_pool.Limits.from_env({}) == sandbox_pool.Limits(memory_mb=256, cpu_seconds=2.0, workers=2)
    lim = sandbox_pool.Limits.from_env({"GRIDFLOW_SANDBOX_MEMORY_MB": "64", "GRIDFLOW_SANDBOX_CPU_SECONDS": "0.5"})
    assert (lim.memory_mb, lim.cpu_seconds) == (64, 0.5)
    with pytest.raises(ValueError, match="GRIDFLOW_SANDBOX_MEMORY_MB"):
        sandbox_pool.Limits.from_env({"GRIDFLOW_SANDBOX_MEMORY_MB": "lots"})
    with pytest.raises(ValueError, match="GRIDFLOW_SANDBOX_CPU_SECONDS"):
        sandbox_pool.Limits.from_env({"GRIDFLOW_SANDBOX_CPU_SECONDS": "-1"})


def test_memory_limit_from_the_environment_applies(monkeypatch):
    monkeypatch.setenv("GRIDFLOW_SANDBOX_MEMORY_MB", "64")
    sandbox_pool.shutdown()
    assert sandbox_pool.get_pool().limits.memory_mb == 64
    env = sandbox.RestrictedEnvironment()
    ctx: dict = {}
    env.execute("s = 'a' * 999990\nparts = [s + str(i) for i in range(8)]", ctx)  # 8 MB fits (and comes back)
    assert len(ctx["parts"]) == 8
    with pytest.raises(sandbox.ScriptLimitExceeded, match=r"memory limit \(64 MB\)"):
        env.execute("s = 'a' * 999990\nparts = [s + str(i) for i in range(100)]", {})  # 100 MB does not


def test_a_gigabyte_is_stopped_at_the_memory_limit_and_the_worker_replaced(pool):
    env = sandbox.RestrictedEnvironment()
    assert env.evaluate("sorted(x)", {"x": [2, 1]}) == [1, 2]
    (first,) = pool.pids()
    with pytest.raises(sandbox.ScriptLimitExceeded, match=r"memory limit \(256 MB\)") as ei:
        env.execute(GIGABYTE, {})
    assert isinstance(ei.value, ScriptError), "the runtime turns it into an incident like any script error"
    assert pool.stopped == 1 and pool.pids() == []
    assert env.evaluate("sorted(x)", {"x": [3, 1]}) == [1, 3], "a fresh worker serves the next script"
    (second,) = pool.pids()
    assert second != first and pool.spawned == 2


@pytest.mark.parametrize("script,ctx", [(REPLACES, {"s": "a" * 4_000_000}), (MODPOW, {})],
                         ids=["chained-replace", "modular-pow"])
def test_seconds_of_c_level_work_are_stopped_within_the_cpu_limit(pool, script, ctx):
    env = sandbox.RestrictedEnvironment()
    before = _children_cpu()
    with pytest.raises(sandbox.ScriptLimitExceeded, match=r"CPU limit \(2 s\)"):
        env.execute(script, ctx)
    used = _children_cpu() - before  # CPU time of the stopped worker, start-up included
    assert used < 2.0 + 1.5, used
    assert pool.stopped == 1
    assert env.evaluate("max(x)", {"x": [1, 5]}) == 5


def test_the_guards_stop_the_reviewed_bombs_before_any_limit():
    env = sandbox.RestrictedEnvironment()
    for script in ["n = pow(3, 200000)", "s = 'ab'.ljust(10**9)", "s = 'ab'.rjust(10**9)", "s = 'ab'.center(10**9)",
                   "s = '1'.zfill(10**9)", "s = str.ljust('ab', 10**9)", "n = 10**9\ns = f'{1:>{n}}'",
                   "s = '%*d' % (10**9, 1)", "s = '%0999999999d' % 1", "s = ('a' * 1000).replace('a', 'a' * 2000)",
                   "s = ('a' * 1000).replace('', 'bb' * 1000)", "s = ('x' * 2000).join(['a'] * 1000)",
                   "s = ('\\t' * 1000).expandtabs(10**6)", "n = round(5, -10**6)", "x = sum([[0] * 1000] * 2000, [])",
                   "s = 'ab'\nfor i in range(40):\n    s = s + s", "x = [1]\nfor i in range(40):\n    x.extend(x)",
                   "n = pow(7, 1 << 20000, (1 << 20000) + 7)", "s = ('a' * 100000)" + ".encode().hex()" * 10]:
        with pytest.raises(sandbox.ScriptBudgetExceeded) as ei:
            env.execute(script, {})
        assert not isinstance(ei.value, sandbox.ScriptLimitExceeded), script
    ctx: dict = {"names": ["b", "a"]}
    env.execute("a = 'ab'.ljust(5, '.')\nb = 'a-b'.replace('-', '+')\nc = ', '.join(sorted(names))\n"
                "d = f'{7:>4}'\ne = '%5.1f' % 2.25\nf = pow(2, 10) + pow(2, 10, 7)\ng = round(2.567, 2)\n"
                "h = sum([[1], [2]], [])\ni = '7'.zfill(3)", ctx)
    assert [ctx[k] for k in "abcdefghi"] == ["ab...", "a+b", "a, b", "   7", "  2.2", 1026, 2.57, [1, 2], "007"]


def test_data_crosses_to_the_worker_and_back_unchanged():
    env = sandbox.RestrictedEnvironment()
    when = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    ctx = {"t": (1, 2), "s": {3, 1}, "k": {1: "a"}, "when": when, "day": date(2026, 1, 5), "big": 1 << 100,
           "nested": [{"a": (1,)}], "tagged": {"__gf__": "tuple", "v": [1]}, "mediations": [{"outcome": "no"}]}
    env.execute("n = sorted(s)\nt2 = t + (3,)\nk[2] = 'b'\nnested[0]['b'] = 2\n"
                "mediations.append({'outcome': 'resolved'})\nlater = when + (when - when)", ctx)
    assert ctx["t2"] == (1, 2, 3) and ctx["n"] == [1, 3] and ctx["k"] == {1: "a", 2: "b"}
    assert ctx["nested"] == [{"a": (1,), "b": 2}] and ctx["tagged"] == {"__gf__": "tuple", "v": [1]}
    assert ctx["later"] == when and ctx["day"] == date(2026, 1, 5) and ctx["big"] == 1 << 100
    assert [m["outcome"] for m in ctx["mediations"]] == ["no", "resolved"], "in-place changes come back"
    assert env.evaluate("any(m['outcome'] == 'resolved' for m in mediations)", ctx) is True
    odd = {"y": [2, 1], "odd": object()}
    env.execute("x = sorted(y)", odd)  # only the names a script mentions travel
    assert odd["x"] == [1, 2]
    with pytest.raises(ScriptError, match="cannot be passed"):
        env.execute("x = sorted([odd])", odd)


def test_errors_come_back_as_their_own_type():
    env = sandbox.RestrictedEnvironment()
    with pytest.raises(NameError, match="deadline") as ei:
        env.execute("x = sorted([deadline])", {})
    assert ei.value.name == "deadline"
    with pytest.raises(ZeroDivisionError):
        env.execute("x = sorted([1 / 0])", {})
    with pytest.raises(KeyError) as ki:
        env.evaluate("sorted(d['missing'])", {"d": {}})
    assert str(ki.value) == "'missing'"
    with pytest.raises(ScriptError) as se:  # a script cannot end the parent process
        env.execute("x = sorted([])\nraise SystemExit(3)", {})
    assert type(se.value).__name__ == "SystemExit" and not isinstance(se.value, SystemExit)


def test_helpers_work_in_the_worker_with_the_steps_calendar_and_clock(fake_clock):
    cal = WorkCalendar(holidays={date(2026, 1, 6)})
    step = Step(actor="t", calendar=cal)
    step.current_task = "setup"
    token = sandbox.current_step.set(step)
    try:
        ctx = {"warn_days": 1, "level": "village", "current_unit": "U1"}
        script = ("warn_at = workdays(warn_days)\nstamp = now()\nlater = later_by(stamp, 2)\n"
                  "emit('level_entered', level=level, unit=current_unit)\nemit('second', n=len(level))")
        assert not sandbox.runs_in_process(sandbox.compile_unit(script, "exec"))
        sandbox.RestrictedEnvironment().execute(script, ctx)
        with pytest.raises(ZeroDivisionError):
            sandbox.RestrictedEnvironment().execute("emit('before_error')\nx = sorted([1 / 0])", {})
    finally:
        sandbox.current_step.reset(token)
    assert ctx["warn_at"] == "2026-01-07T16:00:00+08:00", "Tuesday 6 January is a holiday in this calendar"
    assert ctx["stamp"] == fake_clock.current.isoformat(), "now() in the worker is the parent's clock"
    assert ctx["later"] == "2026-01-07T16:00:00+08:00"
    assert [(e["kind"], e["data"], e["task"]) for e in step.emitted] == [
        ("level_entered", {"level": "village", "unit": "U1"}, "setup"), ("second", {"n": 7}, "setup"),
        ("before_error", {}, "setup")], "emitted in the worker, recorded on the step in order"


def test_a_runaway_in_one_thread_does_not_disturb_another(pool):
    env = sandbox.RestrictedEnvironment()
    results: list = []

    def normal():
        for i in range(20):
            results.append(env.evaluate("sorted([i, 0])", {"i": i}))

    t = threading.Thread(target=normal)
    t.start()
    with pytest.raises(sandbox.ScriptLimitExceeded):
        env.execute(MODPOW, {})
    t.join()
    assert results == [sorted([i, 0]) for i in range(20)]


# ---- on the databases: incidents, the next instance, the timer sweep ---------------------------------
_RUNAWAY = """if kind == 'memory':
    s = 'a' * 999990
    parts = [s + str(i) for i in range(1100)]
elif kind == 'cpu':
    y = [pow(7, 1 &lt;&lt; 3000, (1 &lt;&lt; 3000) + 7) for i in range(100)]
done = True"""

_BPMN = f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="Defs_runaway"
    targetNamespace="http://gridflow.example/test">
  <bpmn:process id="runaway_now" name="Runs a script at once" isExecutable="true">
    <bpmn:startEvent id="s0"><bpmn:outgoing>a1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="bomb_now" name="Bomb"><bpmn:incoming>a1</bpmn:incoming><bpmn:outgoing>a2</bpmn:outgoing>
      <bpmn:script>{_RUNAWAY}</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="after_now" name="After"><bpmn:incoming>a2</bpmn:incoming><bpmn:outgoing>a3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="e0"><bpmn:incoming>a3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="a1" sourceRef="s0" targetRef="bomb_now"/>
    <bpmn:sequenceFlow id="a2" sourceRef="bomb_now" targetRef="after_now"/>
    <bpmn:sequenceFlow id="a3" sourceRef="after_now" targetRef="e0"/>
  </bpmn:process>
  <bpmn:process id="runaway_later" name="Runs a script when a timer fires" isExecutable="true">
    <bpmn:startEvent id="s1"><bpmn:outgoing>b1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="wait" name="Wait"><bpmn:incoming>b1</bpmn:incoming><bpmn:outgoing>b2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="deadline" name="Deadline" attachedToRef="wait">
      <bpmn:outgoing>b3</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>"PT1H"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:scriptTask id="bomb_later" name="Bomb"><bpmn:incoming>b3</bpmn:incoming><bpmn:outgoing>b4</bpmn:outgoing>
      <bpmn:script>{_RUNAWAY}</bpmn:script></bpmn:scriptTask>
    <bpmn:userTask id="after_later" name="After"><bpmn:incoming>b4</bpmn:incoming><bpmn:outgoing>b5</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="e1"><bpmn:incoming>b2</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="e2"><bpmn:incoming>b5</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="b1" sourceRef="s1" targetRef="wait"/>
    <bpmn:sequenceFlow id="b2" sourceRef="wait" targetRef="e1"/>
    <bpmn:sequenceFlow id="b3" sourceRef="deadline" targetRef="bomb_later"/>
    <bpmn:sequenceFlow id="b4" sourceRef="bomb_later" targetRef="after_later"/>
    <bpmn:sequenceFlow id="b5" sourceRef="after_later" targetRef="e2"/>
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.fixture
def rt(db, fake_clock, tmp_path):
    path = tmp_path / "runaway.bpmn"
    path.write_text(_BPMN, encoding="utf-8")
    with db.write() as s:
        deploy(s, Bundle.from_dirs(path, FIXTURES / "forms"), actor="tester")
    deploy_fixture(db)
    return Runtime(db)


def _row(db, iid: int) -> Instance:
    with db.read() as s:
        return s.get(Instance, iid)


def _steps_normally(rt: Runtime, db) -> None:
    iid = rt.start("four_tasks", {"unit": "U"}).instance_id
    for _ in range(4):
        (wi,) = open_items(db, iid)
        rt.complete(iid, wi.task_guid, {"note": "ok", "amount": 1})
    assert _row(db, iid).status == "completed"


def test_an_overrun_at_start_is_an_incident_and_the_next_instance_steps(rt, db, pool):
    for kind, limit in (("memory", r"memory limit \(256 MB\)"), ("cpu", r"CPU limit \(2 s\)")):
        step = rt.start("runaway_now", {"kind": kind})
        row = _row(db, step.instance_id)
        assert row.status == "failed" and row.error_task == "bomb_now"
        assert row.error_message.startswith("ScriptLimitExceeded: the script exceeded the sandbox ")
        assert re.search(limit, row.error_message), row.error_message
        assert open_items(db, step.instance_id) == []
        assert [e.kind for e in rt.history(step.instance_id)] == ["started", "error"]
        _steps_normally(rt, db)
    assert pool.stopped == 2
    ok = rt.start("runaway_now", {"kind": "none"})
    assert _row(db, ok.instance_id).status == "running" and [w.task_spec for w in open_items(db, ok.instance_id)] == [
        "after_now"], "the same script runs in the replacement worker"


def test_the_sweep_goes_on_past_overrunning_timers(rt, db, pool, fake_clock):
    ids = {kind: rt.start("runaway_later", {"kind": kind}).instance_id for kind in ("memory", "none", "cpu")}
    fake_clock.advance(timedelta(hours=2))
    assert rt.sweep() == 3
    for kind in ("memory", "cpu"):
        row = _row(db, ids[kind])
        assert row.status == "failed" and row.error_task == "bomb_later", kind
        assert "ScriptLimitExceeded" in row.error_message and ("memory" if kind == "memory" else "CPU") in row.error_message
    row = _row(db, ids["none"])
    assert row.status == "running" and [w.task_spec for w in open_items(db, ids["none"])] == ["after_later"]
    assert pool.stopped == 2
    assert rt.sweep() == 0, "failed instances are not swept again"
    _steps_normally(rt, db)
