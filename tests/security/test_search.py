"""Issue 17 B, E: search boxes take text literally. LIKE wildcards (% _ \\) match only themselves,
and NUL (PostgreSQL refuses it in a parameter) gives an answer, not a 500."""
from __future__ import annotations

import re

from grid.cases import service as cases
from tests.web_helpers import login, report_case, staff_id

SETTLED = {"settled_on_spot": True, "spot_result": "当场调解成功"}


def _found(client, **q) -> list[str]:
    r = client.get("/archive", query_string=q)
    assert r.status_code == 200, (q, r.status_code)
    return re.findall(r'<a href="/cases/\d+">(MD\d{14})</a>', r.get_data(as_text=True))


def test_like_wildcards_match_only_themselves(app, svc):
    plain = report_case(svc, {**SETTLED, "description": "楼上漏水引发邻里纠纷"})
    client = login(app, "qiuyun")
    assert _found(client) == [plain.case_no]
    for q in ["%", "_", "%%", "漏_", "\\", "\\%"]:
        assert _found(client, q=q) == [], q
    percent = report_case(svc, {**SETTLED, "description": "物业费上涨50%引发纠纷"})
    assert _found(client, q="%") == [percent.case_no]
    assert _found(client, q="50%") == [percent.case_no]
    me = staff_id(svc, "qiuyun")
    assert [c.case_no for c in cases.search_archive(svc, me, text="_")["items"]] == []


def test_nul_in_archive_search_is_not_a_500(app, svc):
    plain = report_case(svc, {**SETTLED, "description": "楼上漏水引发邻里纠纷"})
    client = login(app, "qiuyun")
    assert _found(client, q="漏水\x00") == [plain.case_no]  # NUL dropped from the text
    assert _found(client, category="neighbour\x00") == []
    assert _found(client, unit="420602003005\x00") == []
    assert _found(client, **{"from": "2026\x00"}) == [plain.case_no]


def test_nul_in_registry_search_is_not_a_500(app):
    client = login(app, "jiangranran")
    for url in ["/registry/?q=%E5%BC%A0%00", "/registry/api/residents?q=%E5%BC%A0%00",
                "/registry/api/residents?q=a&grid=%00"]:
        assert client.get(url).status_code < 500, url
