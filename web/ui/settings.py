"""Account settings: the interface language (Chinese by default, or English)."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user

from grid.org import accounts

from . import services

bp = Blueprint("settings", __name__)
LANGUAGES = (("zh_CN", "简体中文"), ("en", "English"))


@bp.get("/settings")
def index():
    return render_template("settings/index.html", languages=LANGUAGES)


@bp.post("/settings")
def save():
    locale = request.form.get("locale", "")
    if locale not in dict(LANGUAGES):
        flash(_("Choose one of the languages."), "error")
        return render_template("settings/index.html", languages=LANGUAGES), 422
    accounts.set_locale(services(), current_user.id, locale)
    with force_locale(locale):
        flash(_("Settings saved."), "success")
    return redirect(url_for("settings.index"))
