"""Searching closed cases in the person's jurisdiction: text, category, unit, date range, pages."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Blueprint, render_template, request
from flask_login import current_user

from engine import clock
from grid.cases import pages
from grid.cases import service as cases
from grid.org import accounts

from . import form_labels, page_arg, services
from .labels import lang

bp = Blueprint("archive", __name__)
PER_PAGE = 20


def day_arg(value: str | None) -> date | None:
    """A ?from=/?to= day (YYYY-MM-DD); None when missing or not a date (the filter is then off)."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def day_start(d: date | None) -> datetime | None:
    """Midnight, Beijing time, at the start of day `d`."""
    return datetime.combine(d, time(0), tzinfo=clock.SHANGHAI) if d else None


@bp.get("/archive")
def index():
    svc = services()
    a = request.args
    text = (a.get("q") or "").strip()[:100] or None
    category = a.get("category") or None
    unit = a.get("unit") or None
    d_from, d_to = day_arg(a.get("from")), day_arg(a.get("to"))
    page = page_arg()
    searched = any(k in a for k in ("q", "category", "unit", "from", "to", "page"))
    result = cases.search_archive(svc, current_user.id, text=text, category=category, unit=unit,
                                  date_from=day_start(d_from), date_to=day_start(d_to + timedelta(days=1)) if d_to else None,
                                  page=page, per_page=PER_PAGE)
    labels = form_labels()
    units = pages.archive_units(svc, current_user.id)
    names = accounts.unit_names(svc, [c.grid_code for c in result["items"]])
    params = {k: v for k, v in {"q": text, "category": category, "unit": unit, "from": a.get("from"),
                                "to": a.get("to")}.items() if v}
    return render_template("archive/index.html", result=result, labels=labels, units=units, names=names,
                           lang=lang(), q=text or "", category=category, unit=unit, d_from=a.get("from", ""),
                           d_to=a.get("to", ""), searched=searched, params=params, page=page)
