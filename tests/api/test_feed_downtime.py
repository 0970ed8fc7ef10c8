"""The event feed's push side when the data centre's receiver goes down in the middle of the seed
story (issue 13's acceptance: "also after it was down for part of the run"), on both databases.

A real HTTP receiver (a thread in the test) is up for the first steps of the story, stopped for
the middle ones (the port refuses connections, so deliveries fail and are retried with back-off),
and started again on the same port for the rest. The outbox is delivered after every step, as the
scheduler would. At the end, the receiver holds every event of the story exactly once, in the
order of the pull feed (/api/v1/events reads the same rows), with valid signatures and no
personal data, and nothing is left in the dead-letter list.
"""
from __future__ import annotations

import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import yaml

from engine import outbox
from grid.cases.scenario import Runner
from tests.api.helpers import ROOT

STORY = ROOT / "workflows" / "scenarios" / "03_seed_story.yaml"


class _Hook(BaseHTTPRequestHandler):
    got: list[dict] = []
    bad: list[str] = []
    secret = ""

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if hmac.compare_digest(self.headers.get("X-Gridflow-Signature", ""), outbox.sign(self.secret, body)):
            self.got.append(json.loads(body))
            self.send_response(204)
        else:
            self.bad.append(self.headers.get("X-Gridflow-Signature", ""))
            self.send_response(401)
        self.end_headers()

    def log_message(self, *a):
        pass


class _Receiver:
    """The receiver on a fixed port, which the test stops and starts."""

    def __init__(self):
        self.srv: HTTPServer | None = HTTPServer(("127.0.0.1", 0), _Hook)
        self.port = self.srv.server_address[1]
        self._serve()

    def _serve(self) -> None:
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.srv = None

    def start(self) -> None:
        self.srv = HTTPServer(("127.0.0.1", self.port), _Hook)
        self._serve()


class _DeliveringRunner(Runner):
    """The seed story, with the outbox delivered after every step and the receiver down for steps
    `down` (1-based, as the scenario counts them)."""

    def __init__(self, svc, doc, file, receiver: _Receiver, down: range):
        super().__init__(svc, doc, file)
        self.receiver, self.down, self.step_no = receiver, down, 0
        self.got_at_stop: int | None = None
        self.rounds: list[tuple[int, bool, outbox.Delivery]] = []

    def _tick(self) -> None:
        self.step_no += 1
        up = self.step_no not in self.down
        if up and self.receiver.srv is None:
            self.receiver.start()
        elif not up and self.receiver.srv is not None:
            self.receiver.stop()
            self.got_at_stop = len(_Hook.got)
        self.rounds.append((self.step_no, up, outbox.deliver_due(self.svc.db)))

    def do_report(self, arg):
        super().do_report(arg)
        self._tick()

    def do_complete(self, arg):
        super().do_complete(arg)
        self._tick()

    def do_advance(self, arg):
        super().do_advance(arg)
        self._tick()

    def do_expect(self, arg):
        super().do_expect(arg)
        self._tick()


def test_receiver_down_in_the_middle_of_the_story_gets_every_event_once_in_order(svc):
    receiver = _Receiver()
    _Hook.got, _Hook.bad = [], []
    with svc.db.write() as s:
        hook = outbox.add_webhook(s, "data centre", f"http://127.0.0.1:{receiver.port}/hook")
        _Hook.secret = hook.secret
    doc = yaml.safe_load(Path(STORY).read_text(encoding="utf-8"))
    steps = len(doc["steps"])
    down = range(steps // 3, 2 * steps // 3 + 1)
    runner = _DeliveringRunner(svc, doc, str(STORY), receiver, down)
    try:
        result = runner.run()
        assert result.passed, str(result)
        assert runner.got_at_stop, "events arrived before the receiver went down"
        assert any(not up and d.failed for _n, up, d in runner.rounds), "deliveries failed while it was down"
        assert any(up and d.sent for n, up, d in runner.rounds if n > down.stop), "and were retried after"
        # after the story, the scheduler keeps delivering (the real clock is past every back-off)
        for _ in range(50):
            if not outbox.deliver_due(svc.db):
                break
    finally:
        if receiver.srv is not None:
            receiver.stop()
    with svc.db.read() as s:
        pulled = [r.payload for r in outbox.feed(s, 0, 10_000)]
        dead = outbox.dead_letters(s)
    assert not dead and not _pending(svc) and not _Hook.bad
    pushed_ids = [e["id"] for e in _Hook.got]
    assert pushed_ids == [p["id"] for p in pulled], "push and pull agree, in order"
    assert len(set(pushed_ids)) == len(pushed_ids), "once per event id"
    assert 0 < runner.got_at_stop < len(pushed_ids)
    kinds = [p["type"].rsplit(".", 1)[1] for p in pulled]
    assert kinds[0] == "reported" and "escalated" in kinds and kinds[-1] == "archived", kinds
    assert all("description" not in e["data"] and "parties" not in e["data"] for e in _Hook.got)


def _pending(svc) -> list:
    from sqlalchemy import select

    with svc.db.read() as s:
        return list(s.scalars(select(outbox.OutboxRow).where(outbox.OutboxRow.destination.like("webhook:%"),
                                                             outbox.OutboxRow.delivered_at.is_(None))))
