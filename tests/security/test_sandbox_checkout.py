"""The sandbox pool's checkout has a limit (issue 17, scope 6): a step whose script finds every
worker busy does not wait for ever while it holds the write transaction; past
GRIDFLOW_SANDBOX_CHECKOUT_SECONDS the step is an incident that says why, and once a worker is
free the next step (and a retry) runs."""
from __future__ import annotations

import pytest

from engine import sandbox, sandbox_pool
from tests.engine.test_sandbox_limits import _row, rt  # noqa: F401 - the runaway fixture process


@pytest.fixture
def pool():
    p = sandbox_pool.configure(workers=1, checkout_seconds=0.3)
    yield p
    sandbox_pool.shutdown()


def test_checkout_limit_from_the_environment():
    assert sandbox_pool.Limits.from_env({}).checkout_seconds == 10.0
    assert sandbox_pool.Limits.from_env({"GRIDFLOW_SANDBOX_CHECKOUT_SECONDS": "2.5"}).checkout_seconds == 2.5
    with pytest.raises(ValueError, match="GRIDFLOW_SANDBOX_CHECKOUT_SECONDS"):
        sandbox_pool.Limits.from_env({"GRIDFLOW_SANDBOX_CHECKOUT_SECONDS": "0"})


def test_a_busy_pool_is_a_clear_error_not_a_wait(pool):
    held = pool._checkout()  # every worker busy (as with a long script in another thread)
    try:
        with pytest.raises(sandbox_pool.SandboxBusy, match=r"all 1 script sandbox workers stayed busy for 0.3 s"):
            sandbox.RestrictedEnvironment().execute("x = sorted([3, 1, 2])\ny = [i * i for i in x]", {})
    finally:
        pool._checkin(held)
    ctx = {}
    sandbox.RestrictedEnvironment().execute("x = sorted([3, 1, 2])\ny = [i * i for i in x]", ctx)
    assert ctx["y"] == [1, 4, 9]


def test_a_step_that_finds_the_pool_busy_is_an_incident_and_the_next_one_runs(rt, db, pool):  # noqa: F811
    held = pool._checkout()
    try:
        step = rt.start("runaway_now", {"kind": "none"})
    finally:
        pool._checkin(held)
    row = _row(db, step.instance_id)
    assert row.status == "failed" and row.error_task == "bomb_now"
    assert "SandboxBusy" in row.error_message and "stayed busy" in row.error_message, row.error_message
    ok = rt.start("runaway_now", {"kind": "none"})
    assert _row(db, ok.instance_id).status == "running"
