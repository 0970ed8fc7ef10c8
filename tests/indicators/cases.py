"""A constructed set of cases, driven through the real process, with hand-computed answers.

Every case is reported in 江冉冉's grid under 檀溪社区 (community), under 真武山街道 (street).
Monday 2026-03-02, Beijing time:
  ontime  10:00 reported, dispatched; 12:00 resolved and verified satisfied (2 h at the community)
  spot    12:00 settled on the spot
  dup     12:00 closed at dispatch as a duplicate of `ontime`
  esc     12:00 community cannot resolve -> street resolves, verified satisfied
  rework  12:00 resolved, residents NOT satisfied -> rework at the community, resolved, satisfied
  late    12:00 dispatched and left: Thu 03-05 12:01 预警 + 督办, 督办 urged (催办);
          Mon 03-09 12:01 超期 (问责) + escalation; the street resolves at once, verified satisfied
"""
from __future__ import annotations

COMMUNITY = "420602003005"  # 檀溪社区
STREET = "420602003000"  # 真武山街道

_VERIFY_OK = {"satisfied": True, "signature": "江冉冉"}


def _report(case: str, category: str, **extra) -> dict:
    data = {"category": category, "description": f"指标测试 {case}", "location": {"text": "檀溪社区"},
            "settled_on_spot": False, **extra}
    return {"report": {"as": "jiangranran", "case": case, "data": data}}


def _dispatch(case: str, who: str = "qiuyun", mediator: str = "@med1.420602003005", **data) -> dict:
    return {"complete": {"case": case, "task": "dispatch", "as": who,
                         "data": data or {"action": "dispatch", "assignees": [mediator]}}}


def _mediate(case: str, who: str = "med1.420602003005", outcome: str = "resolved") -> dict:
    return {"complete": {"case": case, "task": "mediate", "as": who, "data": {"outcome": outcome, "notes": "测试"}}}


def _verify(case: str, satisfied: bool = True) -> dict:
    data = _VERIFY_OK if satisfied else {"satisfied": False, "signature": "江冉冉", "notes": "不满意"}
    return {"complete": {"case": case, "task": "verify", "as": "jiangranran", "data": data}}


STEPS = [
    _report("ontime", "neighbour"),
    _dispatch("ontime"),
    {"advance": "PT2H"},
    _mediate("ontime"),
    _verify("ontime"),
    _report("spot", "neighbour", settled_on_spot=True, spot_result="当场调解"),
    _report("dup", "municipal"),
    _dispatch("dup", action="duplicate", duplicate_of="$case_no:ontime"),
    _report("esc", "land"),
    _dispatch("esc"),
    _mediate("esc", outcome="cannot_resolve"),
    _dispatch("esc", who="disp2.420602003000", mediator="@med1.420602003000"),
    _mediate("esc", who="med1.420602003000"),
    _verify("esc"),
    _report("rework", "neighbour"),
    _dispatch("rework", mediator="@med2.420602003005"),
    _mediate("rework", who="med2.420602003005"),
    _verify("rework", satisfied=False),
    _dispatch("rework", mediator="@med2.420602003005"),
    _mediate("rework", who="med2.420602003005"),
    _verify("rework"),
    _report("late", "neighbour"),
    _dispatch("late"),
    {"expect": {"case": "late", "level": "village", "archived": False}},
]
MONDAY_STEPS = list(STEPS)
LATE_STEPS = [
    {"advance": {"to": "2026-03-05T12:01:00+08:00"}},
    {"expect": {"case": "late", "records": {"warning": 1, "supervision": 1}}},
    {"complete": {"case": "late", "task": "supervise", "as": "sup.420602003005", "data": {"comment": "请尽快办理"}}},
    {"advance": {"to": "2026-03-09T12:01:00+08:00"}},
    {"expect": {"case": "late", "level": "township", "records": {"accountability": 1, "escalation": 1}}},
    _dispatch("late", who="disp2.420602003000", mediator="@med1.420602003000"),
    _mediate("late", who="med1.420602003000"),
    _verify("late"),
    {"expect": {"case": "late", "archived": True, "result": "satisfied"}},
]


def doc(steps: list[dict]) -> dict:
    return {"name": "indicator cases", "start": "2026-03-02T10:00:00+08:00", "steps": steps}
