"""Outbound notifications through the outbox: an urge's e-mail reaches a local SMTP server and
its SMS a local HTTP gateway, once each, also when the gateway was down for a while; quiet hours
hold an SMS back until they end; preferences turn a channel off; 企业微信 gets its token first."""
from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import http.server
import json
import socket
import socketserver
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from engine import channels, outbox
from engine.outbox import OutboxRow
from grid.cases import notification_prefs as prefs
from grid.cases import service as cases
from tests.cases.test_notifications import MEDIATOR, SUPERVISOR, report_and_dispatch, sid, to_supervision

MED_MAIL, MED_PHONE = "med1@example.org", "13800000001"
SMS_SECRET = "s3cret"


# ---- a minimal SMTP server ---------------------------------------------------------------------
class _SMTPHandler(socketserver.StreamRequestHandler):
    def _say(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._say("220 localhost test smtpd")
        rcpt: list[str] = []
        while line := self.rfile.readline():
            cmd = line.decode("utf-8", "replace").strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self._say("250-localhost")
                self._say("250 8BITMIME")
            elif verb in ("HELO", "NOOP", "RSET"):
                self._say("250 OK")
            elif verb == "MAIL":
                rcpt = []
                self._say("250 OK")
            elif verb == "RCPT":
                rcpt.append(cmd.split(":", 1)[1].strip().strip("<>"))
                self._say("250 OK")
            elif verb == "DATA":
                self._say("354 end with .")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.mails.append((rcpt, email.message_from_bytes(data, policy=email.policy.default)))
                self._say("250 queued")
            elif verb == "QUIT":
                self._say("221 bye")
                return
            else:
                self._say("502 not implemented")


@pytest.fixture
def smtp():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.mails = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


# ---- a local HTTP server (SMS gateway, 企业微信) -------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet test output
        pass

    def _reply(self, doc: dict, status: int = 200) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.server.requests.append(("GET", url.path, parse_qs(url.query), dict(self.headers), None))
        if url.path == "/cgi-bin/gettoken":
            self.server.tokens += 1
            self._reply({"errcode": 0, "errmsg": "ok", "access_token": f"tok{self.server.tokens}", "expires_in": 7200})
        else:
            self._reply({"errcode": 404}, 404)

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append(("POST", url.path, parse_qs(url.query), dict(self.headers), raw))
        if url.path == "/cgi-bin/message/send":
            token = parse_qs(url.query).get("access_token", [""])[0]
            if token in self.server.expired:
                self._reply({"errcode": 42001, "errmsg": "access_token expired"})
            else:
                self._reply({"errcode": 0, "errmsg": "ok", "msgid": "m1"})
        else:
            self._reply({"ok": True})


def _serve(port: int = 0) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    server.requests, server.tokens, server.expired = [], 0, set()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def servers():
    started: list = []

    def start(port: int = 0):
        server = _serve(port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sms_to(server, phone: str) -> list[dict]:
    docs = [json.loads(r[4]) for r in server.requests if r[0] == "POST"]
    return [d for d in docs if d["to"] == phone]


def _configure(monkeypatch, smtp_server=None, sms_url=None, wecom_url=None) -> None:
    for name in list(__import__("os").environ):
        if name.startswith(("GRIDFLOW_SMTP_", "GRIDFLOW_SMS_", "GRIDFLOW_WECOM_")):
            monkeypatch.delenv(name)
    if smtp_server is not None:
        monkeypatch.setenv("GRIDFLOW_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("GRIDFLOW_SMTP_PORT", str(smtp_server.server_address[1]))
        monkeypatch.setenv("GRIDFLOW_SMTP_FROM", "gridflow@example.org")
    if sms_url:
        monkeypatch.setenv("GRIDFLOW_SMS_URL", sms_url)
        monkeypatch.setenv("GRIDFLOW_SMS_SECRET", SMS_SECRET)
    if wecom_url:
        monkeypatch.setenv("GRIDFLOW_WECOM_CORP_ID", "ww123")
        monkeypatch.setenv("GRIDFLOW_WECOM_SECRET", "corpsecret")
        monkeypatch.setenv("GRIDFLOW_WECOM_AGENT_ID", "1000002")
        monkeypatch.setenv("GRIDFLOW_WECOM_BASE_URL", wecom_url)


def _only_urges(svc, staff_id: str, **addresses) -> None:
    """The mediator wants urges by e-mail and SMS, and nothing else outside the app."""
    prefs.update(svc, staff_id, channels={k: [] for k in prefs.KINDS} | {"urged": ["email", "sms", "wecom"]},
                 **addresses)


def _queued(svc, channel: str, staff_id: str) -> list[OutboxRow]:
    with svc.db.read() as s:
        return list(s.scalars(select(OutboxRow).where(OutboxRow.destination == f"{channel}:{staff_id}")))


def test_email_and_sms_arrive_once_also_after_the_gateway_was_down(fake_clock, svc, smtp, servers, monkeypatch):
    port = _free_port()  # nothing listens here yet: the gateway is down
    _configure(monkeypatch, smtp_server=smtp, sms_url=f"http://127.0.0.1:{port}/sms")
    med, sup = sid(svc, MEDIATOR), sid(svc, SUPERVISOR)
    _only_urges(svc, med, email=MED_MAIL, phone=MED_PHONE)
    c = report_and_dispatch(svc)
    to_supervision(svc, fake_clock, c)  # Friday 16:00 in Beijing: no quiet hours
    assert _queued(svc, "email", med) == [] and _queued(svc, "sms", med) == []  # new task, warning: in-app only
    assert cases.urge(svc, sup, c.id, "请今天处理") == "completed"
    assert len(_queued(svc, "email", med)) == 1 and len(_queued(svc, "sms", med)) == 1
    assert smtp.mails == []  # nothing is sent inside the step

    first = outbox.deliver_due(svc.db, timeout=2)
    assert first.failed >= 1
    mails = [m for rcpt, m in smtp.mails if rcpt == [MED_MAIL]]
    assert len(mails) == 1
    assert "请今天处理" in mails[0].get_content() and c.case_no in mails[0].get_content()
    assert "督办催办" in mails[0]["Subject"]
    (row,) = _queued(svc, "sms", med)
    assert row.attempts == 1 and row.delivered_at is None and not row.dead and row.last_error
    again = outbox.deliver_due(svc.db, timeout=2)  # not due yet: the back-off holds it
    assert again.sent == 0 and _queued(svc, "sms", med)[0].attempts == 1

    gateway = servers(port)  # the gateway comes back
    fake_clock.advance(outbox.backoff(1) + timedelta(seconds=1))
    assert outbox.deliver_due(svc.db, timeout=2).sent >= 1
    (sms,) = _sms_to(gateway, MED_PHONE)
    assert "请今天处理" in sms["text"] and sms["id"]
    req = next(r for r in gateway.requests if r[4] and json.loads(r[4])["to"] == MED_PHONE)
    headers = {k.lower(): v for k, v in req[3].items()}
    assert headers["x-gridflow-signature"] == "sha256=" + hmac.new(SMS_SECRET.encode(), req[4],
                                                                   hashlib.sha256).hexdigest()
    assert headers["idempotency-key"] == sms["id"]
    (row,) = _queued(svc, "sms", med)
    assert row.delivered_at is not None and row.attempts == 2

    outbox.deliver_due(svc.db, timeout=2)  # once each: nothing is sent twice
    assert len(_sms_to(gateway, MED_PHONE)) == 1
    assert len([m for rcpt, m in smtp.mails if rcpt == [MED_MAIL]]) == 1


def test_quiet_hours_delay_the_sms_not_the_email(fake_clock, svc, smtp, servers, monkeypatch):
    gateway = servers()
    _configure(monkeypatch, smtp_server=smtp, sms_url=f"http://127.0.0.1:{gateway.server_address[1]}/sms")
    med, sup = sid(svc, MEDIATOR), sid(svc, SUPERVISOR)
    _only_urges(svc, med, email=MED_MAIL, phone=MED_PHONE)
    c = report_and_dispatch(svc)
    to_supervision(svc, fake_clock, c, by=timedelta(days=3, hours=7))  # Thursday 23:00 in Beijing
    assert cases.urge(svc, sup, c.id, "明早处理") == "completed"
    outbox.deliver_due(svc.db, timeout=2)
    assert len([m for rcpt, m in smtp.mails if rcpt == [MED_MAIL]]) == 1  # e-mail wakes no one
    assert _sms_to(gateway, MED_PHONE) == []
    (row,) = _queued(svc, "sms", med)
    assert row.next_attempt_at == datetime(2026, 1, 8, 23, 0, tzinfo=UTC)  # Friday 07:00 in Beijing
    fake_clock.set(datetime(2026, 1, 8, 22, 59, tzinfo=UTC))
    outbox.deliver_due(svc.db, timeout=2)
    assert _sms_to(gateway, MED_PHONE) == []
    fake_clock.set(datetime(2026, 1, 8, 23, 1, tzinfo=UTC))
    outbox.deliver_due(svc.db, timeout=2)
    assert len(_sms_to(gateway, MED_PHONE)) == 1


def test_preferences_turn_a_channel_off(fake_clock, svc, smtp, servers, monkeypatch):
    gateway = servers()
    _configure(monkeypatch, smtp_server=smtp, sms_url=f"http://127.0.0.1:{gateway.server_address[1]}/sms")
    med, sup = sid(svc, MEDIATOR), sid(svc, SUPERVISOR)
    prefs.update(svc, med, channels={"urged": ["email"]}, email=MED_MAIL, phone=MED_PHONE)
    assert prefs.get(svc, med).channels["urged"] == ["email"]
    c = report_and_dispatch(svc)
    to_supervision(svc, fake_clock, c)
    cases.urge(svc, sup, c.id, "请今天处理")
    outbox.deliver_due(svc.db, timeout=2)
    # urges: by e-mail only; the warning still goes by SMS (the default for a kind not chosen)
    assert [r.kind for r in _queued(svc, "sms", med)] == ["notify.warning"]
    assert [d["text"] for d in _sms_to(gateway, MED_PHONE) if "请今天处理" in d["text"]] == []
    assert len(_sms_to(gateway, MED_PHONE)) == 1
    assert [m["Subject"] for rcpt, m in smtp.mails if rcpt == [MED_MAIL]] == [
        "【网格通】新任务", "【网格通】办理预警", "【网格通】督办催办"]  # e-mail: the defaults, and the urge
    with pytest.raises(Exception, match="preferences"):
        prefs.update(svc, med, channels={"urged": ["fax"]})


def test_wecom_gets_a_token_then_sends_and_refreshes_an_expired_one(fake_clock, svc, servers, monkeypatch):
    wecom = servers()
    base = f"http://127.0.0.1:{wecom.server_address[1]}"
    _configure(monkeypatch, wecom_url=base)
    med, sup = sid(svc, MEDIATOR), sid(svc, SUPERVISOR)
    _only_urges(svc, med, wecom_user="Med1")
    c = report_and_dispatch(svc)
    to_supervision(svc, fake_clock, c)
    cases.urge(svc, sup, c.id, "请今天处理")
    assert outbox.deliver_due(svc.db, timeout=2).sent == 1
    sends = [r for r in wecom.requests if r[1] == "/cgi-bin/message/send"]
    assert [r[1] for r in wecom.requests] == ["/cgi-bin/gettoken", "/cgi-bin/message/send"]
    assert wecom.requests[0][2] == {"corpid": ["ww123"], "corpsecret": ["corpsecret"]}
    body = json.loads(sends[0][4])
    assert body["touser"] == "Med1" and body["agentid"] == 1000002 and body["msgtype"] == "text"
    assert "请今天处理" in body["text"]["content"] and sends[0][2]["access_token"] == ["tok1"]

    # the channel on its own: an expired token is fetched again and the message sent once more
    ch = channels.WeComChannel(corp_id="ww123", secret="corpsecret", agent_id=7, base_url=base)
    ch.send(channels.Message(id="x1", to="Med1", text="一"))
    wecom.expired.add(ch._token)
    ch.send(channels.Message(id="x2", to="Med1", text="二"))
    tail = [r[1] for r in wecom.requests[2:]]
    assert tail == ["/cgi-bin/gettoken", "/cgi-bin/message/send", "/cgi-bin/message/send",
                    "/cgi-bin/gettoken", "/cgi-bin/message/send"]


def test_quiet_until_runs_over_midnight():
    at = datetime(2026, 1, 5, 15, 30, tzinfo=UTC)  # 23:30 in Beijing
    assert channels.quiet_until(at, "22:00", "07:00") == datetime(2026, 1, 5, 23, 0, tzinfo=UTC)
    assert channels.quiet_until(datetime(2026, 1, 5, 22, 0, tzinfo=UTC), "22:00", "07:00") == datetime(
        2026, 1, 5, 23, 0, tzinfo=UTC)  # 06:00 the next morning
    assert channels.quiet_until(datetime(2026, 1, 5, 4, 0, tzinfo=UTC), "22:00", "07:00") is None  # 12:00
    assert channels.quiet_until(at, "", "") is None
