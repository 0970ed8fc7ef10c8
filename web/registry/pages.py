"""The registry pages: "my grid at a glance" (buildings → households → members, with flags and
due visits), household and resident pages with the life events, flags and an audited reveal of
ID numbers and phones, and the masked resident search for picking case parties (a search by a
full ID number or phone is refused with 403 to those who may not reveal, 429 over the limit).

Every call goes through `grid.registry` (households, visits, pages), which checks jurisdiction
and rights; the resident page adds the person's dispute cases from `grid.cases.parties`.
"""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from engine.errors import Conflict, InvalidData
from grid.cases import parties
from grid.errors import Forbidden
from grid.registry import aggregates, households, visits
from grid.registry import pages as registry_pages

from .blueprint import back_to, bp, current_staff_id, error_text, services

UNITS_PER_PAGE = 50  # units (or grids) per page of the registry hierarchy
SEARCH_LIMIT = 20
FIND_LIMIT = 20  # units found by name


@bp.get("/")
def index():
    """"My grids" for the people who work on grids; for leaders the hierarchy they drill
    (city → county → township → village → grids) with the registry counts below each unit."""
    svc, me = services(), current_staff_id()
    q = (request.args.get("q") or "").strip()
    unit = request.args.get("unit") or None
    find = (request.args.get("find") or "").strip()
    grids = registry_pages.my_grids(svc, me, browse=False)
    if len(grids) == 1 and not q and not find and unit is None:
        return redirect(url_for("registry.grid", code=grids[0][0]))
    tree, page = None, _page()
    if unit is not None or not grids:
        tree = aggregates.unit_page(svc, me, unit, limit=UNITS_PER_PAGE, offset=(page - 1) * UNITS_PER_PAGE)
        if tree.unit is not None and tree.unit.level == "grid":
            return redirect(url_for("registry.grid", code=tree.unit.code))
    units, more_units = [], False
    if find and tree is not None:
        units, more_units = aggregates.find_units(svc, me, find, tree.unit.code if tree.unit else None,
                                                  limit=FIND_LIMIT)
    found, status, more = [], 200, False
    if q:
        try:
            found = registry_pages.search(svc, me, q, limit=SEARCH_LIMIT + 1)
            more, found = len(found) > SEARCH_LIMIT, found[:SEARCH_LIMIT]
        except (Forbidden, registry_pages.TooManySearches) as e:
            flash(_search_refusal(e), "error")
            status = _search_status(e)
    pages = max(1, (tree.total + UNITS_PER_PAGE - 1) // UNITS_PER_PAGE) if tree else 1
    return render_template("registry/index.html", grids=grids, q=q, found=found, more_found=more,
                           search_limit=SEARCH_LIMIT, tree=tree, page=page, pages=pages, find=find,
                           units=units, more_units=more_units, find_limit=FIND_LIMIT), status


def _page() -> int:
    try:
        return max(1, min(int(request.args.get("page", 1)), 10_000))
    except ValueError:
        return 1


def _search_refusal(e: Exception) -> str:
    """The refusal of a search by a full ID number or phone, in the user's language."""
    if isinstance(e, registry_pages.TooManySearches):
        return _("Too many searches by a full ID number or phone: at most %(n)s in %(minutes)s minutes. "
                 "Try again later.", n=registry_pages.EXACT_LIMIT,
                 minutes=int(registry_pages.EXACT_WINDOW.total_seconds() // 60))
    return _("Only the grid worker of the grid or the grid head of its village may search by a full ID "
             "number or phone. Search by name instead.")


def _search_status(e: Exception) -> int:
    return 429 if isinstance(e, registry_pages.TooManySearches) else 403


@bp.get("/grid/<code>")
def grid(code: str):
    svc, me = services(), current_staff_id()
    view = registry_pages.grid_overview(svc, me, code, include_gone=request.args.get("all") == "1")
    return render_template("registry/grid.html", v=view, show_all=request.args.get("all") == "1")


@bp.post("/grid/<code>/building")
def add_building(code: str):
    svc, me = services(), current_staff_id()
    try:
        lat = float(request.form["lat"]) if request.form.get("lat") else None
        lng = float(request.form["lng"]) if request.form.get("lng") else None
        households.add_building(svc, me, code, request.form.get("address", ""), lat, lng)
        flash(_("Building registered."), "success")
    except ValueError:
        flash(_("Latitude and longitude must be numbers."), "error")
    except (InvalidData, Conflict) as e:
        flash(error_text(e), "error")
    return redirect(url_for("registry.grid", code=code))


@bp.post("/building/<int:building_id>/household")
def add_household(building_id: int):
    svc, me = services(), current_staff_id()
    try:
        hid = households.add_household(svc, me, building_id, request.form.get("door_no", ""))
    except (InvalidData, Conflict) as e:
        flash(error_text(e), "error")
        return back_to(url_for("registry.index"))
    flash(_("Household registered."), "success")
    return redirect(url_for("registry.household", household_id=hid))


@bp.get("/household/<int:household_id>")
def household(household_id: int):
    svc, me = services(), current_staff_id()
    page = registry_pages.household_page(svc, me, household_id)
    return render_template("registry/household.html", **page)


@bp.post("/household/<int:household_id>/birth")
def birth(household_id: int):
    f = request.form
    return _newcomer(households.register_birth, household_id, _("Birth registered."), name=f.get("name", ""),
                     birth_date=f.get("birth_date", ""), sex=f.get("sex", ""), id_number=f.get("id_number") or None,
                     relation=f.get("relation") or "child", note=f.get("note") or None)


@bp.post("/household/<int:household_id>/move-in")
def move_in(household_id: int):
    f = request.form
    return _newcomer(households.move_in, household_id, _("Move-in registered."), name=f.get("name", ""),
                     id_number=f.get("id_number", ""), relation=f.get("relation", ""), phone=f.get("phone") or None,
                     moved_on=f.get("moved_on") or None, came_from=f.get("came_from") or None,
                     note=f.get("note") or None)


def _newcomer(register, household_id: int, done: str, **fields):
    """Register a person into the household (birth or move-in): their page, or back with the reason."""
    try:
        rid = register(services(), current_staff_id(), household_id, **fields)
    except (InvalidData, Conflict) as e:
        flash(error_text(e), "error")
        return redirect(url_for("registry.household", household_id=household_id))
    flash(done, "success")
    return redirect(url_for("registry.resident", resident_id=rid))


@bp.get("/resident/<int:resident_id>")
def resident(resident_id: int):
    svc, me = services(), current_staff_id()
    return _resident_page(svc, me, resident_id)


def _resident_page(svc, me: str, resident_id: int, revealed: dict | None = None, status: int = 200):
    """The resident page: the registry's record (which checks jurisdiction first), the person's
    dispute cases and, for those who may change the record, the latest reveals."""
    page = registry_pages.resident_page(svc, me, resident_id)
    page["cases"] = parties.resident_cases(svc, me, resident_id)
    log = registry_pages.reveals(svc, me, resident_id, limit=10) if page["can_edit"] else []
    return render_template("registry/resident.html", p=page, r=page["resident"], revealed=revealed or {},
                           reveal_log=log), status


@bp.post("/resident/<int:resident_id>/reveal")
def reveal(resident_id: int):
    svc, me = services(), current_staff_id()
    field_name = request.form.get("field", "")
    if field_name not in registry_pages.REVEAL_FIELDS:
        abort(400)
    value = registry_pages.reveal(svc, me, resident_id, field_name, request.form.get("reason") or None)
    return _resident_page(svc, me, resident_id, revealed={field_name: value})


def _resident_action(resident_id: int, fn, done):
    """Run `fn(svc, me)`; flash `done` (a lazy message) or the error, back to the resident page."""
    svc, me = services(), current_staff_id()
    try:
        fn(svc, me)
        flash(str(done), "success")
    except (InvalidData, Conflict) as e:
        flash(error_text(e), "error")
    return redirect(url_for("registry.resident", resident_id=resident_id))


@bp.post("/resident/<int:resident_id>/death")
def death(resident_id: int):
    f = request.form
    return _resident_action(resident_id, lambda svc, me: households.register_death(
        svc, me, resident_id, died_on=f.get("date") or None, note=f.get("note") or None), _l("Death recorded."))


@bp.post("/resident/<int:resident_id>/move-out")
def move_out(resident_id: int):
    f = request.form
    return _resident_action(resident_id, lambda svc, me: households.move_out(
        svc, me, resident_id, moved_on=f.get("date") or None, destination=f.get("destination") or None,
        note=f.get("note") or None), _l("Move-out recorded."))


@bp.post("/resident/<int:resident_id>/update")
def update(resident_id: int):
    f = request.form
    changes = {k: f.get(k) for k in ("name", "phone", "relation") if f.get(k)}
    return _resident_action(resident_id, lambda svc, me: households.update_resident(
        svc, me, resident_id, changes, note=f.get("note") or None), _l("Details corrected."))


@bp.post("/resident/<int:resident_id>/flag")
def flag(resident_id: int):
    f = request.form
    return _resident_action(resident_id, lambda svc, me: visits.flag(
        svc, me, resident_id, f.get("category", ""), f.get("risk_level", ""), note=f.get("note") or None),
        _l("Flagged; the visit schedule has started."))


def _flag_resident(flag_id: int) -> int:
    return visits.flag_resident(services(), current_staff_id(), flag_id)


@bp.post("/flag/<int:flag_id>/unflag")
def unflag(flag_id: int):
    rid = _flag_resident(flag_id)
    return _resident_action(rid, lambda svc, me: visits.unflag(svc, me, flag_id, request.form.get("reason", "")),
                            _l("Flag ended; the visit schedule has stopped."))


@bp.post("/flag/<int:flag_id>/risk")
def risk(flag_id: int):
    rid = _flag_resident(flag_id)
    return _resident_action(rid, lambda svc, me: visits.change_risk(svc, me, flag_id,
                                                                    request.form.get("risk_level", "")),
                            _l("Risk level changed."))


@bp.get("/api/residents")
def api_residents():
    """Masked search results for picking case parties: [{resident_id, name, sex, age, phone (masked),
    id_number (masked), address, grid_name}]; add {"name", "resident_id"} to the report's parties."""
    svc, me = services(), current_staff_id()
    try:
        found = registry_pages.search(svc, me, request.args.get("q", ""), grid_code=request.args.get("grid") or None,
                                      limit=request.args.get("limit", 20, type=int) or 20)
    except (Forbidden, registry_pages.TooManySearches) as e:
        return jsonify({"error": _search_refusal(e)}), _search_status(e)
    return jsonify(found)
