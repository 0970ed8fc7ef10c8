"""Serving stored attachments, after the authorisation check of `grid.attachments.open_for`."""
from __future__ import annotations

from flask import Blueprint, send_file
from flask_login import current_user

from grid.cases import attachments

from . import services

bp = Blueprint("attachments", __name__)


@bp.get("/attachments/<attachment_id>")
def show(attachment_id: str):
    a, path = attachments.open_for(services(), current_user.id, attachment_id)
    inline = a.is_image and a.content_type != "image/heic"
    resp = send_file(path, mimetype=a.content_type, as_attachment=not inline, download_name=a.filename,
                     conditional=True, max_age=0)
    resp.headers["Cache-Control"] = "private, max-age=3600"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; sandbox"
    return resp
