"""An Open311 GeoReport v2 client written from the published specification
(http://wiki.open311.org/GeoReport_v2), not from Gridflow's code, run over HTTP against gunicorn
in JSON and XML. The XML answers are validated against an XSD written below from the shapes the
specification documents (element names, W3C date-times, the enumerations it lists).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET  # noqa: N817 - the spec's client parses plain XML
from datetime import timedelta

import pytest
from lxml import etree

from engine import clock
from grid.org import api_clients, demo
from tests.api.http_helpers import until


# ---- the client --------------------------------------------------------------------------------
class GeoReportError(Exception):
    """An error answer: the HTTP status and the spec's errors list [(code, description)]."""

    def __init__(self, status: int, errors: list[tuple[str, str]], raw: bytes):
        super().__init__(f"{status}: {errors}")
        self.status, self.errors, self.raw = status, errors, raw


class GeoReport:
    """GeoReport v2: `<base>/<resource>.<format>`; api_key with POST; jurisdiction_id on every call."""

    def __init__(self, base: str, fmt: str = "xml", api_key: str | None = None, jurisdiction_id: str | None = None):
        self.base, self.fmt, self.api_key, self.jurisdiction_id = base.rstrip("/") + "/", fmt, api_key, jurisdiction_id
        self.last_raw = b""

    # transport
    def _call(self, method: str, resource: str, params: dict) -> bytes:
        params = {k: v for k, v in params.items() if v is not None}
        if self.jurisdiction_id:
            params.setdefault("jurisdiction_id", self.jurisdiction_id)
        url = f"{self.base}{resource}.{self.fmt}"
        data = None
        if method == "GET":
            if params:
                url += "?" + urllib.parse.urlencode(params)
        else:
            data = urllib.parse.urlencode(params).encode()  # application/x-www-form-urlencoded
        req = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                self.last_raw = r.read()
                return self.last_raw
        except urllib.error.HTTPError as e:
            raw = e.read()
            self.last_raw = raw
            raise GeoReportError(e.code, self._errors(raw), raw) from None

    def _errors(self, raw: bytes) -> list[tuple[str, str]]:
        if self.fmt == "json":
            return [(str(e["code"]), e["description"]) for e in json.loads(raw)]
        root = ET.fromstring(raw)
        assert root.tag == "errors"
        return [(e.findtext("code"), e.findtext("description")) for e in root.findall("error")]

    # parsing XML into the same shapes the JSON format has
    @staticmethod
    def _flat(el: ET.Element) -> dict:
        return {c.tag: c.text for c in el}

    def _list(self, raw: bytes, root: str, item: str) -> list[dict]:
        if self.fmt == "json":
            return json.loads(raw)
        top = ET.fromstring(raw)
        assert top.tag == root, top.tag
        return [self._flat(e) for e in top.findall(item)]

    # the six methods (plus discovery)
    def discovery(self) -> dict:
        raw = self._call("GET", "discovery", {})
        if self.fmt == "json":
            return json.loads(raw)
        top = ET.fromstring(raw)
        return {"changeset": top.findtext("changeset"), "contact": top.findtext("contact"),
                "key_service": top.findtext("key_service"),
                "endpoints": [{**{c.tag: c.text for c in e if c.tag != "formats"},
                               "formats": [f.text for f in e.findall("formats/format")]}
                              for e in top.findall("endpoints/endpoint")]}

    def services(self) -> list[dict]:
        return self._list(self._call("GET", "services", {}), "services", "service")

    def service_definition(self, service_code: str) -> dict:
        raw = self._call("GET", f"services/{service_code}", {})
        if self.fmt == "json":
            return json.loads(raw)
        top = ET.fromstring(raw)
        attrs = []
        for a in top.findall("attributes/attribute"):
            attr = {c.tag: c.text for c in a if c.tag != "values"}
            attr["values"] = [self._flat(v) for v in a.findall("values/value")]
            attrs.append(attr)
        return {"service_code": top.findtext("service_code"), "attributes": attrs}

    def post_request(self, service_code: str, *, lat: float | None = None, long: float | None = None,
                     address_string: str | None = None, description: str | None = None,
                     media_url: str | None = None, attributes: dict[str, str] | None = None, **person) -> list[dict]:
        params = {"api_key": self.api_key, "service_code": service_code, "lat": lat, "long": long,
                  "address_string": address_string, "description": description, "media_url": media_url, **person}
        for code, value in (attributes or {}).items():
            params[f"attribute[{code}]"] = value
        return self._list(self._call("POST", "requests", params), "service_requests", "request")

    def requests(self, *, service_request_id: list[str] | None = None, service_code: str | None = None,
                 start_date: str | None = None, end_date: str | None = None, status: str | None = None) -> list[dict]:
        params = {"service_request_id": ",".join(service_request_id) if service_request_id else None,
                  "service_code": service_code, "start_date": start_date, "end_date": end_date, "status": status,
                  "api_key": self.api_key}
        return self._list(self._call("GET", "requests", params), "service_requests", "request")

    def request(self, service_request_id: str) -> dict:
        rows = self._list(self._call("GET", f"requests/{service_request_id}", {"api_key": self.api_key}),
                          "service_requests", "request")
        assert len(rows) == 1
        return rows[0]


# ---- the documented shapes as an XSD -----------------------------------------------------------
XSD = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:simpleType name="empty"><xs:restriction base="xs:string"><xs:length value="0"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="optDateTime"><xs:union memberTypes="xs:dateTime empty"/></xs:simpleType>
  <xs:simpleType name="optDecimal"><xs:union memberTypes="xs:decimal empty"/></xs:simpleType>
  <xs:simpleType name="status"><xs:restriction base="xs:string">
    <xs:enumeration value="open"/><xs:enumeration value="closed"/></xs:restriction></xs:simpleType>
  <xs:simpleType name="serviceType"><xs:restriction base="xs:string">
    <xs:enumeration value="realtime"/><xs:enumeration value="batch"/><xs:enumeration value="blackbox"/>
  </xs:restriction></xs:simpleType>
  <xs:simpleType name="datatype"><xs:restriction base="xs:string">
    <xs:enumeration value="string"/><xs:enumeration value="number"/><xs:enumeration value="datetime"/>
    <xs:enumeration value="text"/><xs:enumeration value="singlevaluelist"/><xs:enumeration value="multivaluelist"/>
  </xs:restriction></xs:simpleType>

  <xs:element name="discovery"><xs:complexType><xs:all>
    <xs:element name="changeset" type="xs:dateTime"/>
    <xs:element name="contact" type="xs:string"/>
    <xs:element name="key_service" type="xs:string"/>
    <xs:element name="endpoints"><xs:complexType><xs:sequence>
      <xs:element name="endpoint" maxOccurs="unbounded"><xs:complexType><xs:all>
        <xs:element name="specification" type="xs:anyURI"/>
        <xs:element name="url" type="xs:anyURI"/>
        <xs:element name="changeset" type="xs:dateTime"/>
        <xs:element name="type"><xs:simpleType><xs:restriction base="xs:string">
          <xs:enumeration value="production"/><xs:enumeration value="test"/></xs:restriction></xs:simpleType></xs:element>
        <xs:element name="formats"><xs:complexType><xs:sequence>
          <xs:element name="format" type="xs:string" maxOccurs="unbounded"/></xs:sequence></xs:complexType></xs:element>
      </xs:all></xs:complexType></xs:element>
    </xs:sequence></xs:complexType></xs:element>
  </xs:all></xs:complexType></xs:element>

  <xs:element name="services"><xs:complexType><xs:sequence>
    <xs:element name="service" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:all>
      <xs:element name="service_code" type="xs:string"/>
      <xs:element name="service_name" type="xs:string"/>
      <xs:element name="description" type="xs:string" minOccurs="0"/>
      <xs:element name="metadata" type="xs:boolean"/>
      <xs:element name="type" type="serviceType"/>
      <xs:element name="keywords" type="xs:string" minOccurs="0"/>
      <xs:element name="group" type="xs:string" minOccurs="0"/>
    </xs:all></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>

  <xs:element name="service_definition"><xs:complexType><xs:all>
    <xs:element name="service_code" type="xs:string"/>
    <xs:element name="attributes"><xs:complexType><xs:sequence>
      <xs:element name="attribute" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:all>
        <xs:element name="variable" type="xs:boolean"/>
        <xs:element name="code" type="xs:string"/>
        <xs:element name="datatype" type="datatype"/>
        <xs:element name="required" type="xs:boolean"/>
        <xs:element name="datatype_description" type="xs:string" minOccurs="0"/>
        <xs:element name="order" type="xs:positiveInteger"/>
        <xs:element name="description" type="xs:string"/>
        <xs:element name="values" minOccurs="0"><xs:complexType><xs:sequence>
          <xs:element name="value" maxOccurs="unbounded"><xs:complexType><xs:all>
            <xs:element name="key" type="xs:string"/><xs:element name="name" type="xs:string"/>
          </xs:all></xs:complexType></xs:element>
        </xs:sequence></xs:complexType></xs:element>
      </xs:all></xs:complexType></xs:element>
    </xs:sequence></xs:complexType></xs:element>
  </xs:all></xs:complexType></xs:element>

  <xs:element name="service_requests"><xs:complexType><xs:sequence>
    <xs:element name="request" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:all>
      <xs:element name="service_request_id" type="xs:string" minOccurs="0"/>
      <xs:element name="token" type="xs:string" minOccurs="0"/>
      <xs:element name="status" type="status" minOccurs="0"/>
      <xs:element name="status_notes" type="xs:string" minOccurs="0"/>
      <xs:element name="service_name" type="xs:string" minOccurs="0"/>
      <xs:element name="service_code" type="xs:string" minOccurs="0"/>
      <xs:element name="description" type="xs:string" minOccurs="0"/>
      <xs:element name="agency_responsible" type="xs:string" minOccurs="0"/>
      <xs:element name="service_notice" type="xs:string" minOccurs="0"/>
      <xs:element name="account_id" type="xs:string" minOccurs="0"/>
      <xs:element name="requested_datetime" type="optDateTime" minOccurs="0"/>
      <xs:element name="updated_datetime" type="optDateTime" minOccurs="0"/>
      <xs:element name="expected_datetime" type="optDateTime" minOccurs="0"/>
      <xs:element name="address" type="xs:string" minOccurs="0"/>
      <xs:element name="address_id" type="xs:string" minOccurs="0"/>
      <xs:element name="zipcode" type="xs:string" minOccurs="0"/>
      <xs:element name="lat" type="optDecimal" minOccurs="0"/>
      <xs:element name="long" type="optDecimal" minOccurs="0"/>
      <xs:element name="media_url" type="xs:string" minOccurs="0"/>
    </xs:all></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>

  <xs:element name="errors"><xs:complexType><xs:sequence>
    <xs:element name="error" maxOccurs="unbounded"><xs:complexType><xs:all>
      <xs:element name="code" type="xs:integer"/>
      <xs:element name="description" type="xs:string"/>
    </xs:all></xs:complexType></xs:element>
  </xs:sequence></xs:complexType></xs:element>
</xs:schema>
"""
SCHEMA = etree.XMLSchema(etree.fromstring(XSD))
GET_REQUEST = ("service_request_id", "status", "status_notes", "service_name", "service_code", "description",
               "agency_responsible", "requested_datetime", "updated_datetime", "expected_datetime", "address",
               "lat", "long", "media_url")


def _valid(client: GeoReport, root: str) -> None:
    """The client's last XML answer has the spec's root element, UTF-8 declaration and shape."""
    if client.fmt != "xml":
        return
    raw = client.last_raw
    assert raw.startswith(b"<?xml") and b"utf-8" in raw[:60].lower(), raw[:80]
    doc = etree.fromstring(raw)
    assert doc.tag == root, doc.tag
    assert SCHEMA.validate(doc), (SCHEMA.error_log, raw[:2000])


# ---- the test ----------------------------------------------------------------------------------
def test_open311_client_reads_services_and_requests_and_posts_one(server, svc):
    base = f"http://127.0.0.1:{server.port}/open311/v2/"
    key = api_clients.create(svc, "311 app", ["reports:create", "cases:read", "personal:read"], demo.CITY_CODE)[1]
    posted = {fmt: _round_trip(server, base, key, fmt) for fmt in ("json", "xml")}
    assert posted["json"] != posted["xml"]
    _check_landed(svc, posted.values())


def _round_trip(server, base: str, key: str, fmt: str) -> str:
    """Every method once in one format, as a client app would call them; the id it posted."""
    anon = GeoReport(base, fmt, jurisdiction_id=demo.CITY_CODE)
    c = GeoReport(base, fmt, api_key=key, jurisdiction_id=demo.CITY_CODE)

    d = anon.discovery()
    _valid(anon, "discovery")
    ep = d["endpoints"][0]
    assert ep["specification"] == "http://wiki.open311.org/GeoReport_v2" and ep["type"] in ("production", "test")
    assert ep["url"].rstrip("/").endswith("/open311/v2") and "text/xml" in ep["formats"]

    services = anon.services()
    _valid(anon, "services")
    codes = {s["service_code"]: s for s in services}
    assert {"neighbour", "municipal"} <= set(codes)
    for s in services:
        assert s["service_name"] and str(s["metadata"]).lower() in ("true", "false")
        assert s["type"] in ("realtime", "batch", "blackbox") and "keywords" in s and "group" in s

    definition = anon.service_definition("municipal")
    _valid(anon, "service_definition")
    assert definition["service_code"] == "municipal"
    attrs = {a["code"]: a for a in definition["attributes"]}
    answers = {}
    for code, a in attrs.items():
        assert a["datatype"] in ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")
        if a["datatype"] in ("singlevaluelist", "multivaluelist"):
            assert a["values"] and all(v["key"] and v["name"] for v in a["values"])
            answers[code] = a["values"][0]["key"]
        elif a["datatype"] in ("string", "text"):
            answers[code] = "王某\n李某"
    assert "parties" in attrs, "the report form's parties become an attribute"

    with pytest.raises(GeoReportError) as e:
        anon.service_definition("no-such-service")
    assert e.value.status == 404 and e.value.errors[0][0] == "404"
    _valid(anon, "errors")

    with pytest.raises(GeoReportError) as e:  # POST without an api_key
        anon.post_request("municipal", lat=32.0213, long=112.1432, description="无钥匙的请求")
    assert e.value.status in (400, 401, 403) and e.value.errors
    _valid(anon, "errors")

    made = c.post_request("municipal", lat=32.0213, long=112.1432, description=f"路面刷黑引发纠纷（{fmt}）",
                          media_url="https://example.org/p/1.jpg", attributes=answers)
    _valid(c, "service_requests")
    assert len(made) == 1 and made[0]["service_request_id"]
    rid = made[0]["service_request_id"]

    one = c.request(rid)
    _valid(c, "service_requests")
    assert set(GET_REQUEST) <= set(one), set(GET_REQUEST) - set(one)
    assert one["service_request_id"] == rid and one["status"] == "open" and one["service_code"] == "municipal"
    assert one["agency_responsible"] == "檀溪社区", "routed by lat/long to the seed grid's community"
    assert one["description"] == f"路面刷黑引发纠纷（{fmt}）"
    assert float(one["lat"]) == pytest.approx(32.0213) and float(one["long"]) == pytest.approx(112.1432)
    assert one["requested_datetime"] and one["expected_datetime"]

    by_id = c.requests(service_request_id=[rid, "MD19990101000000"])
    _valid(c, "service_requests")
    assert [r["service_request_id"] for r in by_id] == [rid]

    now = clock.local(clock.now())
    window = {"start_date": (now - timedelta(days=1)).isoformat(timespec="seconds"),
              "end_date": (now + timedelta(minutes=5)).isoformat(timespec="seconds")}
    listed = until(lambda: (lambda rows: rows if rid in [r["service_request_id"] for r in rows] else None)(
        c.requests(service_code="municipal", status="open", **window)), "the request is listed", server)
    _valid(c, "service_requests")
    assert all(r["status"] == "open" and r["service_code"] == "municipal" for r in listed)
    assert rid not in [r["service_request_id"] for r in c.requests(status="closed", **window)]
    _valid(c, "service_requests")

    public = until(lambda: anon.requests(**window) or None, "anonymous list", server)
    _valid(anon, "service_requests")
    assert rid in [r["service_request_id"] for r in public]
    assert all(not r["description"] for r in public), "no personal data without a key that may read it"

    with pytest.raises(GeoReportError) as e:  # the spec's 90-day cap on the date range
        c.requests(start_date="2020-01-01T00:00:00Z", end_date="2020-06-01T00:00:00Z")
    assert e.value.status == 400
    _valid(c, "errors")
    return rid


def _check_landed(svc, case_nos) -> None:
    from sqlalchemy import select

    from grid.cases.models import DisputeCase

    with svc.db.read() as s:
        rows = list(s.scalars(select(DisputeCase).where(DisputeCase.case_no.in_(list(case_nos)))))
    assert len(rows) == 2
    for row in rows:
        assert row.grid_code == demo.SEED_GRID and row.category == "municipal"
        assert row.photos == ["https://example.org/p/1.jpg"]
        assert [p["name"] for p in row.parties] == ["王某", "李某"]
        assert row.source == "open311", "the case keeps where it came from"


def test_the_schema_refuses_shapes_the_spec_does_not_document():
    """The XSD is not a rubber stamp: a wrong status, a misspelt element, a date without a zone."""
    def ok(xml: str) -> bool:
        return SCHEMA.validate(etree.fromstring(xml.encode()))

    assert ok("<service_requests><request><service_request_id>1</service_request_id><status>open</status>"
              "<requested_datetime>2026-01-05T16:00:00+08:00</requested_datetime><lat/></request></service_requests>")
    assert not ok("<service_requests><request><status>pending</status></request></service_requests>")
    assert not ok("<service_requests><request><latitude>32.0</latitude></request></service_requests>")
    assert not ok("<services><service><service_code>x</service_code><service_name>x</service_name>"
                  "<metadata>yes</metadata><type>realtime</type></service></services>")
    assert not ok("<errors><error><code>bad</code><description>x</description></error></errors>")
