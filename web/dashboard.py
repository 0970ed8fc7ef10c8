"""Dashboards (看板) and case lists (在办件 / 我上报的 / 经我办理), with XLSX exports.

Thin: the numbers come from grid.cases.dashboard and grid.cases.indicators (the rollup), the
lists from grid.cases.lists; both check jurisdiction. Charts are drawn by ECharts, served from
web/static/vendor/echarts (copied by scripts/setup), fed by a JSON data block (the CSP forbids
inline scripts).
"""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, Flask, Response, abort, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from engine import clock
from engine.errors import InvalidData, NotFound
from grid.cases import dashboard as dash
from grid.cases import indicators as ind
from grid.cases import lists
from grid.org import accounts

from .ui import due_text, form_labels, page_arg, services
from .ui.archive import day_arg as _day
from .ui.archive import day_start as _start
from .ui.labels import CASE_STATUS, LEVELS, RESULTS, lang, word

bp = Blueprint("dashboard", __name__)
PER_PAGE = 30
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# ---- request parsing ---------------------------------------------------------------------------
def _period() -> tuple[str, date, date]:
    """(kind, first day, last day) from ?period=day|week|month|quarter|year|custom&date=&from=&to=
    (default: this month, Beijing time)."""
    a = request.args
    kind = a.get("period") or "month"
    if kind == "custom":
        start, end = _day(a.get("from")), _day(a.get("to"))
        if start and end and start <= end and (end - start).days <= 3660:
            return kind, start, end
        kind = "month"
    if kind not in ind.PERIODS:
        kind = "month"
    ref = _day(a.get("date")) or clock.local(clock.now()).date()
    start, end = ind.period(kind, ref)
    return kind, start, end


def _name(i: ind.Indicator) -> str:
    return i.zh if lang() == "zh" else i.en


def _fmt(i: ind.Indicator, v) -> str:
    """An indicator value as shown and exported: rates in %, durations as average days."""
    if v is None:
        return "—"
    if i.kind == "rate":
        return f"{v * 100:.1f}%"
    if i.kind == "duration":
        avg = (v or {}).get("all", {}).get("avg_days")
        return "—" if avg is None else f"{avg:.1f}"
    return str(v)


# ---- dashboards --------------------------------------------------------------------------------
@bp.get("/dashboard")
def home():
    code = dash.home_unit(services(), current_user.id)
    if code is None:
        abort(403)
    return show(code)


@bp.get("/dashboard/<unit>")
def show(unit: str):
    svc = services()
    kind, start, end = _period()
    rank_by = request.args.get("rank") or "closure_rate"
    cross = request.args.get("cross") or "handled"
    defs = ind.definitions()
    if rank_by not in {d.key for d in defs}:
        rank_by = "closure_rate"
    if cross not in {d.key for d in defs if d.kind == "count"}:
        cross = "handled"
    data = dash.dashboard(svc, current_user.id, unit, start, end, rank_by=rank_by, cross=cross)
    return render_template("dashboard/show.html", d=data, defs={d.key: d for d in defs}, all_defs=defs,
                           name=_name, fmt=_fmt, kind=kind, chart=_chart(data), labels=form_labels(), lang=lang(),
                           key_rates=dash.KEY_RATES, key_counts=dash.KEY_COUNTS, args=_period_args(kind, start, end),
                           level_word=lambda c: word(LEVELS, c))


@bp.get("/dashboard/wall")
def wall():
    """The 大屏 view for a command centre: the same numbers, full screen, refreshed by reload."""
    svc = services()
    code = request.args.get("unit") or dash.home_unit(svc, current_user.id)
    if code is None:
        abort(403)
    kind, start, end = _period()
    data = dash.dashboard(svc, current_user.id, code, start, end)
    return render_template("dashboard/wall.html", d=data, defs={d.key: d for d in ind.definitions()}, name=_name,
                           fmt=_fmt, chart=_chart(data), key_rates=dash.KEY_RATES, key_counts=dash.KEY_COUNTS,
                           args=_period_args(kind, start, end))


def _period_args(kind: str, start: date, end: date) -> dict:
    if kind == "custom":
        return {"period": kind, "from": start.isoformat(), "to": end.isoformat()}
    return {"period": kind, "date": start.isoformat()}


def _chart(d: dash.Dashboard) -> dict:
    """What dashboard.js draws: the trend (rates in %, counts) and the ranking."""
    defs = {x.key: x for x in ind.definitions()}
    pct = lambda v: None if v is None else round(v * 100, 1)  # noqa: E731
    rank_def = defs[d.rank_by]
    return {
        "months": [t["month"] for t in d.trend],
        "rates": [{"name": _name(defs[k]), "data": [pct(t[k]) for t in d.trend]} for k in dash.KEY_RATES],
        "counts": [{"name": _name(defs[k]), "data": [t[k] for t in d.trend]} for k in ("reported", "closed")],
        "ranking": {"name": _name(rank_def), "percent": rank_def.kind == "rate",
                    "units": [r["name"] for r in d.ranking],
                    "values": [pct(r["value"]) if rank_def.kind == "rate" else ind._rank_value(rank_def, r["value"])
                               for r in d.ranking]},
        "labels": {"rates": _("Key rates in per cent"), "counts": _("Cases per month")},
    }


@bp.get("/dashboard/<unit>/report")
def monthly_report(unit: str):
    """The monthly report of a unit (?month=YYYY-MM), a printable page."""
    svc = services()
    month = request.args.get("month") or f"{clock.local(clock.now()):%Y-%m}"
    try:
        start, end = dash.month_bounds(month)
    except InvalidData:
        abort(400)
    data = dash.dashboard(svc, current_user.id, unit, start, end, months=6)
    p_start, p_end = dash.previous_month(start)
    before = ind.indicators(svc, current_user.id, unit, p_start, p_end)
    table = dash.children_table(svc, current_user.id, unit, start, end)
    defs = ind.definitions()
    return render_template("dashboard/report.html", d=data, before=before, table=table, defs=defs,
                           by_key={x.key: x for x in defs}, name=_name, fmt=_fmt, month=month,
                           key_rates=dash.KEY_RATES, key_counts=dash.KEY_COUNTS, labels=form_labels(), lang=lang(),
                           level_word=lambda c: word(LEVELS, c), generated=clock.now())


@bp.get("/dashboard/<unit>/export.xlsx")
def export_indicators(unit: str):
    """Every indicator for the unit and each child unit, the period and the unit hierarchy, and
    the definitions on a second sheet."""
    svc = services()
    kind, start, end = _period()
    data = dash.dashboard(svc, current_user.id, unit, start, end, months=TREND_EXPORT)
    table = dash.children_table(svc, current_user.id, unit, start, end)
    defs = ind.definitions()
    hierarchy = " / ".join(n for _c, n in data.crumbs)
    heading = [[_("Indicators: %(unit)s", unit=data.unit_name)], [_("Unit hierarchy"), hierarchy],
               [_("Period"), f"{start.isoformat()} – {end.isoformat()}"]]
    cols = [_("Unit"), _("Level"), _("Unit hierarchy")] + [_name(x) for x in defs]
    rows = [[data.unit_name, word(LEVELS, data.unit_level), hierarchy] + [_fmt(x, data.values[x.key]) for x in defs]]
    for r in table:
        rows.append([r["name"], word(LEVELS, r["level"]), f"{hierarchy} / {r['name']}"]
                    + [_fmt(x, r["values"][x.key]) for x in defs])
    trend = dash.Sheet(_("Trend by month"), heading, [_("Month")] + [_name(x) for x in defs if x.key in TREND_KEYS],
                       [[t["month"]] + [_fmt(x, t[x.key]) for x in defs if x.key in TREND_KEYS] for t in data.trend])
    sheets = [dash.Sheet(_("Indicators"), heading, cols, rows), _definitions_sheet(defs), trend]
    return _xlsx(dash.workbook(sheets), f"indicators-{unit}-{start.isoformat()}-{end.isoformat()}.xlsx")


TREND_EXPORT = 12
TREND_KEYS = dash.KEY_RATES + ("reported", "closed")


def _definitions_sheet(defs) -> dash.Sheet:
    rows = []
    for x in defs:
        spec = x.spec
        formula = {"count": " + ".join(x.terms("sum")),
                   "stock": f"Σ {' + '.join(x.terms('plus'))} − Σ {' + '.join(x.terms('minus'))}",
                   "sum": " + ".join(x.terms("terms")),
                   "rate": f"{' + '.join(x.terms('numerator'))} ÷ {' + '.join(x.terms('denominator'))}",
                   "duration": str(spec.get("measure", ""))}[x.kind]
        rows.append([x.key, x.zh, x.en, x.kind, formula, x.better, x.standard or ""])
    return dash.Sheet(_("Definitions"), [[_("Indicator definitions (grid/cases/indicators.yaml, docs/indicators.md)")]],
                      [_("Key"), "指标", "Indicator", _("Kind"), _("Formula"), _("Better"), _("Standard")], rows)


def _xlsx(body: bytes, filename: str) -> Response:
    resp = Response(body, mimetype=XLSX)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return resp


# ---- case lists --------------------------------------------------------------------------------
LISTS = {"open": "dashboard.open_cases", "mine": "dashboard.my_reports", "handled": "dashboard.handled",
         "archive": "archive.index"}


def _open_filters() -> dict:
    a = request.args
    d_from, d_to = _day(a.get("from")), _day(a.get("to"))
    reporter = (a.get("reporter") or "").strip()[:50] or None
    return {
        "unit": (a.get("unit") or None), "level": lists.valid(a.get("level"), lists.LEVEL_CHOICES),
        "category": lists.valid(a.get("category"), lists.CATEGORY_CHOICES),
        "state": lists.valid(a.get("state"), lists.STATES),
        "reporter": (accounts.staff_id_for(services(), reporter) or "\x01none") if reporter else None,
        "date_from": _start(d_from), "date_to": _start(d_to + timedelta(days=1)) if d_to else None,
        "sort": lists.valid(a.get("sort"), lists.SORTS) or "newest",
    }


def _params(*names: str) -> dict:
    return {k: v for k in names if (v := request.args.get(k))}


@bp.get("/cases/open")
def open_cases():
    svc = services()
    f = _open_filters()
    page = page_arg(last=1000)
    result = lists.open_cases(svc, current_user.id, page=page, per_page=PER_PAGE, **f)
    picker = lists.unit_picker(svc, current_user.id, f["unit"])
    params = _params("unit", "level", "category", "state", "reporter", "from", "to", "sort")
    keep = {k: v for k, v in params.items() if k != "unit"}
    return render_template("dashboard/open.html", result=result, picker=picker, f=f, params=params, keep=keep,
                           **_list_context("open"))


@bp.get("/cases/mine")
def my_reports():
    return _simple_list(lists.my_reports, _("My reports"), "dashboard.my_reports", "mine")


@bp.get("/cases/handled")
def handled():
    return _simple_list(lists.handled_by_me, _("Handled by me"), "dashboard.handled", "handled")


def _simple_list(fetch, title: str, endpoint: str, which: str):
    """A list of the signed-in person's own cases (`fetch`), filtered by ?status=."""
    status = lists.valid(request.args.get("status"), lists.STATUSES)
    result = fetch(services(), current_user.id, status=status, page=page_arg(last=1000), per_page=PER_PAGE)
    return render_template("dashboard/simple_list.html", result=result, status=status, params=_params("status"),
                           title=title, endpoint=endpoint, **_list_context(which))


def _list_context(which: str) -> dict:
    return {"which": which, "lists": LISTS, "labels": form_labels(), "lang": lang(), "due_text": due_text,
            "states": lists.STATES, "sorts": lists.SORTS, "levels": lists.LEVEL_CHOICES, "now": clock.now()}


@bp.get("/cases/<which>/export.xlsx")
def export_list(which: str):
    """The list as filtered, up to lists.EXPORT_MAX rows, with the unit hierarchy of each case,
    the filters and the export time, and the column definitions on a second sheet."""
    svc = services()
    uid = current_user.id
    hierarchy = ""
    status = lists.valid(request.args.get("status"), lists.STATUSES)
    if which == "open":
        f = _open_filters()
        result = lists.open_cases(svc, uid, page=1, per_page=lists.EXPORT_MAX, **f)
        if f["unit"]:
            hierarchy = " / ".join(n for _c, n in lists.unit_picker(svc, uid, f["unit"]).crumbs)
        title = _("Open cases")
        shown = _params("unit", "level", "category", "state", "reporter", "from", "to", "sort")
    elif which == "mine":
        result = lists.my_reports(svc, uid, status=status, page=1, per_page=lists.EXPORT_MAX)
        title, shown = _("My reports"), _params("status")
    elif which == "handled":
        result = lists.handled_by_me(svc, uid, status=status, page=1, per_page=lists.EXPORT_MAX)
        title, shown = _("Handled by me"), _params("status")
    else:
        raise NotFound("no such list")
    body = dash.workbook(_list_sheets(title, result, shown, hierarchy))
    return _xlsx(body, f"cases-{which}-{clock.local(clock.now()):%Y%m%d-%H%M}.xlsx")


def _list_sheets(title: str, result: lists.CasePage, shown: dict, hierarchy: str = "") -> list[dash.Sheet]:
    labels, lg, now = form_labels(), lang(), clock.now()
    heading = [[title], [_("Unit hierarchy"), hierarchy or _("My whole jurisdiction")],
               [_("Filters"), "; ".join(f"{k}={v}" for k, v in shown.items()) or _("none")],
               [_("Exported at"), clock.local(now).strftime("%Y-%m-%d %H:%M")]]
    if result.has_next:
        heading.append([_("Only the first %(n)s rows are exported.", n=lists.EXPORT_MAX)])
    cols = [_("Case no."), _("Category"), _("Description"), _("County / district"), _("Township / street"),
            _("Village / community"), _("Grid"), _("Current level"), _("Current unit"), _("Handler"),
            _("Time left (hours)"), _("State"), _("Status"), _("Reporter"), _("Reported"), _("Archived")]
    rows = []
    for r in result.rows:
        h = (r.hierarchy + ["", "", "", ""])[:4]
        left = r.time_left(now)
        rows.append([r.case_no, labels.category(r.category, lg), r.description, *h, word(LEVELS, r.current_level),
                     r.unit_name or r.current_unit or "", "、".join(r.handlers),
                     round(left.total_seconds() / 3600, 1) if left is not None else None,
                     _state_word(r), word(CASE_STATUS, r.status) + (f" · {word(RESULTS, r.result)}" if r.result else ""),
                     r.reporter, clock.local(r.reported_at).strftime("%Y-%m-%d %H:%M"),
                     clock.local(r.archived_at).strftime("%Y-%m-%d %H:%M") if r.archived_at else ""])
    defs = [[_("Current level"), _("The level of the hierarchy handling the case now.")],
            [_("Current unit"), _("The unit handling the case now.")],
            [_("Handler"), _("Who holds the open task: the person, or everyone who may take it.")],
            [_("Time left (hours)"), _("Hours until the earliest due time of its open work; negative when overdue.")],
            [_("State"), _("Overdue: open work past its due time. Warned: past its warning time. Supervised: an "
                           "open supervision (督办) task. Normal: none of these.")],
            [_("Unit hierarchy"), _("The county, township, village and grid where the case was reported.")]]
    return [dash.Sheet(title, heading, cols, rows),
            dash.Sheet(_("Definitions"), [[_("Column definitions")]], [_("Column"), _("Meaning")], defs)]


def _state_word(r: lists.CaseRow) -> str:
    words = {"normal": _("Normal"), "warned": _("Warned"), "overdue": _("Overdue")}
    out = words[r.state]
    return out + (" · " + _("Supervised") if r.supervised else "")


def register(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.context_processor
    def _words():
        return {"state_words": {"normal": _("Normal"), "warned": _("Warned"), "overdue": _("Overdue"),
                                "supervised": _("Supervised")}}
