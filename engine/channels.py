"""Outbound message channels behind one interface: e-mail (SMTP), 企业微信 application messages,
and a generic SMS gateway over HTTP.

Generic: a channel sends one `Message` to one address and raises on failure; it knows nothing
of cases or staff. Messages are never sent inside a step: the domain queues them as outbox
rows (`engine.outbox.add_message`) and the scheduler's outbox job delivers them with retries.
Which channels exist comes from the environment (`from_env`), so a test can point each one at
a local server:

- e-mail: GRIDFLOW_SMTP_HOST, _PORT (25), _USER, _PASSWORD, _FROM, _STARTTLS (1/0);
- 企业微信: GRIDFLOW_WECOM_CORP_ID, _SECRET, _AGENT_ID, _BASE_URL (https://qyapi.weixin.qq.com);
- SMS: GRIDFLOW_SMS_URL, GRIDFLOW_SMS_TOKEN (a bearer token) and/or GRIDFLOW_SMS_SECRET
  (an HMAC-SHA256 key: header X-Gridflow-Signature: sha256=<hex of the body>).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol
from zoneinfo import ZoneInfo

SIGNATURE_HEADER = "X-Gridflow-Signature"
QUIET_CHANNELS = ("sms", "wecom")  # channels that wake people up; e-mail is read when one likes


class ChannelError(RuntimeError):
    """A channel refused or could not take a message (the outbox retries it)."""


@dataclass
class Message:
    """One message to one address. `id` is the idempotency key (the same on every retry)."""

    id: str
    to: str
    text: str
    subject: str = ""
    kind: str = ""
    template: str | None = None  # an SMS gateway's template code, when it needs one
    params: dict = field(default_factory=dict)  # the template's values

    @classmethod
    def from_payload(cls, p: Mapping) -> Message:
        return cls(id=str(p.get("id") or ""), to=str(p.get("to") or ""), text=str(p.get("text") or ""),
                   subject=str(p.get("subject") or ""), kind=str(p.get("kind") or ""),
                   template=p.get("template"), params=dict(p.get("params") or {}))

    def payload(self) -> dict:
        out = {"id": self.id, "to": self.to, "text": self.text, "subject": self.subject, "kind": self.kind}
        if self.template:
            out["template"], out["params"] = self.template, self.params
        return out


class Channel(Protocol):
    """Sends one message; returns on success, raises on any failure."""

    name: str

    def send(self, message: Message) -> None: ...


# ---- e-mail ----------------------------------------------------------------------------------
@dataclass
class EmailChannel:
    host: str
    port: int = 25
    sender: str = "gridflow@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0
    name: str = "email"

    def send(self, message: Message) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"] = self.sender, message.to
        msg["Subject"] = message.subject or message.text[:60]
        # a stable Message-ID per outbox message, so a receiver can drop a retried duplicate
        msg["Message-ID"] = make_msgid(idstring=message.id or None, domain="gridflow")
        msg.set_content(message.text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            refused = smtp.send_message(msg)
        if refused:
            raise ChannelError(f"refused: {', '.join(refused)}")


# ---- HTTP helpers ----------------------------------------------------------------------------
def _http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
          timeout: float = 10.0) -> bytes:
    req = urllib.request.Request(url, data=body, method=method, headers={"User-Agent": "gridflow", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - configured URL
        if not 200 <= resp.status < 300:
            raise ChannelError(f"{url}: HTTP {resp.status}")
        return resp.read()


# ---- 企业微信 ---------------------------------------------------------------------------------
TOKEN_ERRORS = {40001, 40014, 42001}  # invalid / expired access_token: fetch a new one, try once more


@dataclass
class WeComChannel:
    """企业微信 application messages: GET /cgi-bin/gettoken, then POST /cgi-bin/message/send
    (msgtype text) with the cached access_token; `to` is the member's UserID."""

    corp_id: str
    secret: str
    agent_id: int
    base_url: str = "https://qyapi.weixin.qq.com"
    timeout: float = 10.0
    name: str = "wecom"
    _token: str | None = field(default=None, repr=False)
    _expires: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _access_token(self, fresh: bool = False) -> str:
        with self._lock:
            if fresh or not self._token or time.monotonic() >= self._expires:
                q = urllib.parse.urlencode({"corpid": self.corp_id, "corpsecret": self.secret})
                data = json.loads(_http("GET", f"{self.base_url.rstrip('/')}/cgi-bin/gettoken?{q}",
                                        timeout=self.timeout))
                if data.get("errcode", 0) != 0 or not data.get("access_token"):
                    raise ChannelError(f"gettoken: {data.get('errcode')} {data.get('errmsg')}")
                self._token = data["access_token"]
                self._expires = time.monotonic() + max(60, int(data.get("expires_in") or 7200) - 300)
            return self._token

    def send(self, message: Message) -> None:
        body = json.dumps({"touser": message.to, "msgtype": "text", "agentid": self.agent_id,
                           "text": {"content": message.text}, "safe": 0, "enable_duplicate_check": 1,
                           "duplicate_check_interval": 1800}, ensure_ascii=False).encode()
        for fresh in (False, True):
            token = urllib.parse.quote(self._access_token(fresh=fresh))
            data = json.loads(_http("POST", f"{self.base_url.rstrip('/')}/cgi-bin/message/send?access_token={token}",
                                    body, {"Content-Type": "application/json; charset=utf-8"}, self.timeout))
            code = data.get("errcode", 0)
            if code == 0:
                if data.get("invaliduser"):
                    raise ChannelError(f"invalid user: {data['invaliduser']}")
                return
            if code not in TOKEN_ERRORS:
                break
        raise ChannelError(f"message/send: {code} {data.get('errmsg')}")


# ---- SMS gateway -----------------------------------------------------------------------------
@dataclass
class SmsChannel:
    """A generic SMS gateway: POST JSON {"to", "text", "template"?, "params"?, "id"} to `url`,
    authenticated by a bearer token and/or an HMAC-SHA256 signature of the body; 2xx is success."""

    url: str
    token: str | None = None
    secret: str | None = None
    timeout: float = 10.0
    name: str = "sms"

    def send(self, message: Message) -> None:
        doc = {"id": message.id, "to": message.to, "text": message.text}
        if message.template:
            doc["template"], doc["params"] = message.template, message.params
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": message.id}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.secret:
            headers[SIGNATURE_HEADER] = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        _http("POST", self.url, body, headers, self.timeout)


# ---- configuration ---------------------------------------------------------------------------
def from_env(env: Mapping[str, str] | None = None) -> dict[str, Channel]:
    """The channels the environment configures, by name (none configured: an empty dict)."""
    env = os.environ if env is None else env
    out: dict[str, Channel] = {}
    if env.get("GRIDFLOW_SMTP_HOST"):
        out["email"] = EmailChannel(
            host=env["GRIDFLOW_SMTP_HOST"], port=int(env.get("GRIDFLOW_SMTP_PORT") or 25),
            sender=env.get("GRIDFLOW_SMTP_FROM") or "gridflow@localhost", user=env.get("GRIDFLOW_SMTP_USER") or None,
            password=env.get("GRIDFLOW_SMTP_PASSWORD") or None,
            starttls=(env.get("GRIDFLOW_SMTP_STARTTLS") or "0").lower() in ("1", "true", "yes"))
    if env.get("GRIDFLOW_WECOM_CORP_ID") and env.get("GRIDFLOW_WECOM_SECRET"):
        out["wecom"] = WeComChannel(corp_id=env["GRIDFLOW_WECOM_CORP_ID"], secret=env["GRIDFLOW_WECOM_SECRET"],
                                    agent_id=int(env.get("GRIDFLOW_WECOM_AGENT_ID") or 0),
                                    base_url=env.get("GRIDFLOW_WECOM_BASE_URL") or "https://qyapi.weixin.qq.com")
    if env.get("GRIDFLOW_SMS_URL"):
        out["sms"] = SmsChannel(url=env["GRIDFLOW_SMS_URL"], token=env.get("GRIDFLOW_SMS_TOKEN") or None,
                                secret=env.get("GRIDFLOW_SMS_SECRET") or None)
    return out


_cache: dict[tuple, dict[str, Channel]] = {}


def configured() -> dict[str, Channel]:
    """`from_env()`, kept while the environment's channel settings stay the same (so the WeCom
    access token is reused across delivery rounds)."""
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("GRIDFLOW_SMTP_", "GRIDFLOW_WECOM_",
                                                                             "GRIDFLOW_SMS_"))))
    found = _cache.get(key)
    if found is None:
        _cache.clear()
        found = _cache[key] = from_env()
    return found


# ---- quiet hours -----------------------------------------------------------------------------
def quiet_until(now: datetime, start: str | None, end: str | None, tz: str = "Asia/Shanghai") -> datetime | None:
    """When the quiet period holding `now` ends (aware UTC), or None outside it. `start`/`end`
    are "HH:MM" local times; a period may run over midnight (22:00-07:00)."""
    if not start or not end or start == end:
        return None
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    sh, sm = (int(x) for x in start.split(":"))
    eh, em = (int(x) for x in end.split(":"))
    minute, s_min, e_min = local.hour * 60 + local.minute, sh * 60 + sm, eh * 60 + em
    inside = s_min <= minute < e_min if s_min < e_min else (minute >= s_min or minute < e_min)
    if not inside:
        return None
    until = local.replace(hour=eh, minute=em, second=0, microsecond=0)
    if until <= local:
        until += timedelta(days=1)
    return until.astimezone(now.tzinfo or ZoneInfo("UTC"))
