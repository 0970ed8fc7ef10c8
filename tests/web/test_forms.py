"""Forms from JSON Schema: every widget renders, a submission reads back into typed JSON, errors
point at their fields, and the timeline describes answers with the form's own titles."""
from __future__ import annotations

import re

import pytest
from flask import render_template_string
from werkzeug.datastructures import MultiDict

from engine import form_validation
from grid import masking
from web.ui import forms

SCHEMA = {
    "type": "object",
    "title": "全部控件", "x-title": {"en": "All widgets"},
    "x-order": ["name", "notes", "count", "ratio", "kind", "level", "tags", "urgent", "when", "day", "photos",
                "files", "people", "place", "parties", "agree", "reason"],
    "required": ["name", "kind", "agree"],
    "properties": {
        "name": {"type": "string", "title": "名称", "x-title": {"en": "Name"}, "minLength": 2, "maxLength": 20},
        "notes": {"type": "string", "title": "说明", "x-widget": "textarea", "description": "可选"},
        "count": {"type": "integer", "title": "人数", "minimum": 1, "maximum": 99},
        "ratio": {"type": "number", "title": "比例"},
        "kind": {"type": "string", "title": "类型", "enum": ["a", "b", "c", "d"], "x-widget": "select",
                 "x-enum-titles": {"zh": ["甲", "乙", "丙", "丁"], "en": ["A", "B", "C", "D"]}},
        "level": {"type": "string", "title": "等级", "enum": ["low", "high"], "x-widget": "radio"},
        "tags": {"type": "array", "title": "标签", "x-widget": "checkboxes", "uniqueItems": True,
                 "items": {"type": "string", "enum": ["x", "y", "z"]}},
        "urgent": {"type": "boolean", "title": "紧急", "x-widget": "switch", "default": False},
        "when": {"type": "string", "title": "时间", "x-widget": "datetime", "format": "date-time"},
        "day": {"type": "string", "title": "日期", "format": "date"},
        "photos": {"type": "array", "title": "照片", "x-widget": "photo", "items": {"type": "string"}},
        "files": {"type": "array", "title": "附件", "x-widget": "file", "items": {"type": "string"}},
        "people": {"type": "array", "title": "人员", "x-widget": "staff", "x-staff-role": "mediator",
                   "items": {"type": "string"}},
        "place": {"type": "object", "title": "地点", "x-widget": "geo", "required": ["text"],
                  "properties": {"text": {"type": "string", "title": "地址", "minLength": 1},
                                 "lat": {"type": "number", "title": "纬度", "minimum": -90, "maximum": 90},
                                 "lng": {"type": "number", "title": "经度"}}},
        "parties": {"type": "array", "title": "当事人", "x-widget": "parties",
                    "items": {"type": "object", "required": ["name"],
                              "properties": {"name": {"type": "string", "title": "姓名"},
                                             "phone": {"type": "string", "title": "电话",
                                                       "pattern": "^[0-9+\\- ]{5,20}$"}}}},
        "agree": {"type": "boolean", "title": "同意", "enum": [True, False], "x-widget": "radio",
                  "x-enum-titles": {"zh": ["同意", "不同意"], "en": ["Agree", "Disagree"]}},
        "reason": {"type": "string", "title": "理由", "x-widget": "textarea"},
    },
    "if": {"properties": {"agree": {"const": False}}, "required": ["agree"]},
    "then": {"required": ["reason"]},
}
STAFF = {"people": [("u1", "张三（综治主任）"), ("u2", "李四")]}


@pytest.fixture
def app_svc(sqlite_db, tmp_path):
    """Services over an empty SQLite database: the forms render without a city."""
    from grid.config import Settings
    from grid.services import Services

    return Services.build(Settings(database_url=str(sqlite_db.url), uploads=tmp_path), db=sqlite_db)


def render(app, fields, state, lang="zh_CN"):
    with app.test_request_context(), app.app_context():
        from flask import session

        session["lang"] = lang
        return render_template_string('{% from "_form.html" import render %}{{ render(fields, state) }}',
                                      fields=fields, state=state)


def test_every_widget_is_inferred_and_ordered():
    fields = forms.build(SCHEMA, "zh", STAFF)
    assert [f.widget for f in fields] == ["text", "textarea", "number", "number", "select", "radio", "checkboxes",
                                          "switch", "datetime", "date", "photo", "file", "staff", "geo", "parties",
                                          "radio", "textarea"]
    by = {f.key: f for f in fields}
    assert by["kind"].options == [("a", "甲"), ("b", "乙"), ("c", "丙"), ("d", "丁")]
    assert by["agree"].options == [("true", "同意"), ("false", "不同意")]
    assert by["people"].options == STAFF["people"]
    assert by["reason"].required_when == {"agree": "false"} and not by["reason"].required
    assert [c.name for c in by["place"].children] == ["place.text", "place.lat", "place.lng"]
    assert [c.key for c in by["parties"].children] == ["name", "phone"]
    assert forms.build(SCHEMA, "en")[0].label == "Name"


def test_every_widget_renders(app):
    fields = forms.build(SCHEMA, "zh", STAFF)
    html = render(app, fields, forms.FormState())
    for needle in ('type="text" id="f-name" name="name" value="" maxlength="20" aria-required="true"',
                   '<textarea id="f-notes" name="notes"', 'type="number" id="f-count" name="count"',
                   'step="1" min="1" max="99"', 'step="any"', '<select id="f-kind" name="kind" aria-required="true"',
                   '<option value="a">甲</option>', 'type="radio" name="level" value="low"',
                   'type="checkbox" name="tags" value="x"', 'role="switch" id="f-urgent"',
                   'type="datetime-local" id="f-when"', 'type="date" id="f-day"',
                   'type="file" id="f-photos" name="photos" multiple accept="image/jpeg',
                   'accept="image/jpeg,image/png,image/webp,image/heic,image/heif,.heic,.heif,audio/*,.m4a,.amr,.opus,'
                   'video/mp4,video/webm,video/quicktime,video/3gpp,.mov,.mp4,application/pdf"',
                   'type="checkbox" name="people" value="u1"', "张三（综治主任）", 'name="place.text"',
                   'name="place.lat"', 'data-geo="place"', 'name="parties.0.name"', 'type="tel" id="f-parties-0-phone"',
                   'type="radio" name="agree" value="false"', 'data-required-when="{&#34;agree&#34;: &#34;false&#34;}"',
                   '<p class="help" id="f-notes-help">可选</p>', 'aria-describedby="f-notes-help"'):
        assert needle in html, needle
    assert '<fieldset aria-describedby' not in html  # no errors yet


def test_a_submission_reads_back_as_typed_json():
    fields = forms.build(SCHEMA, "zh", STAFF)
    form = MultiDict([("name", "  王五 "), ("notes", "第一行\r\n第二行"), ("count", "3"), ("ratio", "0.5"),
                      ("kind", "b"), ("level", "high"), ("tags", "x"), ("tags", "z"), ("urgent", "on"),
                      ("when", "2026-01-05T09:30"), ("day", "2026-01-05"), ("people", "u1"), ("people", "u2"),
                      ("place.text", "檀溪社区"), ("place.lat", "32.02"), ("place.lng", ""),
                      ("parties.0.name", "甲方"), ("parties.0.phone", "13800000001"), ("parties.1.name", ""),
                      ("parties.1.phone", ""), ("parties.5.name", "乙方"), ("agree", "false"), ("reason", "")])
    data, raw = forms.collect(fields, form)
    assert data == {"name": "王五", "notes": "第一行\n第二行", "count": 3, "ratio": 0.5, "kind": "b", "level": "high",
                    "tags": ["x", "z"], "urgent": True, "when": "2026-01-05T09:30:00+08:00", "day": "2026-01-05",
                    "people": ["u1", "u2"], "place": {"text": "檀溪社区", "lat": 32.02},
                    "parties": [{"name": "甲方", "phone": "13800000001"}, {"name": "乙方"}], "agree": False}
    assert raw["count"] == "3" and raw["people"] == ["u1", "u2"] and raw["place.text"] == "檀溪社区"
    errors = form_validation.validate(SCHEMA, data)
    assert [(e.path, e.validator) for e in errors] == [(("reason",), "required")]  # required because agree is false


def test_errors_point_at_fields_and_the_input_comes_back(app):
    fields = forms.build(SCHEMA, "zh", STAFF)
    form = MultiDict([("name", "王"), ("count", "many"), ("kind", ""), ("place.lat", "123"),
                      ("parties.0.name", ""), ("parties.0.phone", "abc"), ("agree", "true")])
    data, raw = forms.collect(fields, form)
    with app.test_request_context():
        errs = forms.error_map(form_validation.validate(SCHEMA, data))
    assert set(errs) == {"name", "count", "kind", "place.text", "place.lat", "parties.0.name", "parties.0.phone"}
    assert errs["count"] == ["请输入数字。"] and errs["place.text"] == ["此项必填。"]
    assert errs["place.lat"] == ["不能大于 90。"] and errs["parties.0.phone"] == ["格式不正确。"]
    state = forms.FormState(raw, {}, errs, submitted=True)
    html = render(app, fields, state)
    assert 'value="王"' in html and 'value="many"' in html and 'value="abc"' in html and 'value="123"' in html
    assert '<div id="f-parties-0-phone-err">' in html and '<div id="f-place-lat-err">' in html
    assert 'aria-invalid="true"' in html and "请修改标出的内容" in html


def test_messages_are_translated(app):
    with app.test_request_context():
        from flask import session

        session["lang"] = "zh_CN"
        e = form_validation.validate(SCHEMA, {"name": "王", "kind": "zz", "agree": True})
        m = forms.error_map(e)
    assert m["name"] == ["至少填写 2 个字。"] and m["kind"] == ["请选择一个有效选项。"]


def test_describe_uses_form_titles_and_masks_phones(app):
    data = {"kind": "b", "tags": ["x"], "urgent": True, "people": ["u1"], "place": {"text": "檀溪社区"},
            "parties": [{"name": "甲方", "phone": "13800000001"}], "photos": ["id1"], "agree": True}
    with app.test_request_context():
        from flask import session

        session["lang"] = "zh_CN"
        pairs = forms.describe(SCHEMA, data, "zh", {"u1": "张三"}, masking.mask_phone)
    assert pairs == [("类型", "乙"), ("标签", "x"), ("紧急", "是"), ("人员", "张三"), ("地点", "檀溪社区"),
                     ("当事人", "甲方 138****0001"), ("同意", "同意")]


def test_phone_masking():
    assert masking.mask_phone("13800000001") == "138****0001"
    assert masking.mask_phone("0710-3456789") == "071*****6789"
    assert masking.mask_phone("12345") == "***45"
    assert masking.mask_phone(None) == ""
    assert re.fullmatch(r"\d{3}\*+\d{4}", masking.mask_phone("+8613800000001"[1:]))
