"""Serving stored attachments, after the authorisation check of `grid.cases.attachments.open_for`.

* `/attachments/<id>`: what a page shows. For a photo the screen rendition (upright, no EXIF or
  GPS); audio and video inline, with ranged requests so players can seek; anything else
  (PDF, AMR...) as a download.
* `/attachments/<id>/thumb`: a photo's thumbnail, for lists and the case page.
* `/attachments/<id>/original`: the bytes as uploaded (a photo with its EXIF), only as a download.

Bytes come from the local directory (sendfile) or from the object store, through the app either
way, so the case's access rules apply to every byte.
"""
from __future__ import annotations

import io

from flask import Blueprint, send_file
from flask_babel import gettext as _
from flask_login import current_user

from grid.cases import attachments, media

from . import services

bp = Blueprint("attachments", __name__)
_CSP = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"


def _send(content: attachments.Content, *, download_name: str | None, as_attachment: bool):
    src = content.path if content.path is not None else io.BytesIO(content.data or b"")
    resp = send_file(src, mimetype=content.content_type, as_attachment=as_attachment, download_name=download_name,
                     conditional=True, etag=content.etag, max_age=0)
    resp.headers["Cache-Control"] = "private, max-age=3600"
    resp.headers["Content-Security-Policy"] = _CSP
    return resp


@bp.get("/attachments/<attachment_id>")
def show(attachment_id: str):
    svc = services()
    photo = attachments.view_for(svc, current_user.id, attachment_id).is_image
    a, content = attachments.open_for(svc, current_user.id, attachment_id, "screen" if photo else None)
    if photo:
        return _send(content, download_name=None, as_attachment=False)
    return _send(content, download_name=a.filename, as_attachment=not a.playable)


@bp.get("/attachments/<attachment_id>/thumb")
def thumb(attachment_id: str):
    _a, content = attachments.open_for(services(), current_user.id, attachment_id, "thumb")
    return _send(content, download_name=None, as_attachment=False)


@bp.get("/attachments/<attachment_id>/original")
def original(attachment_id: str):
    a, content = attachments.open_for(services(), current_user.id, attachment_id)
    return _send(content, download_name=a.filename, as_attachment=True)


@bp.app_template_global()
def upload_widget(widget: str) -> dict:
    """What an upload field offers: the `accept` list, whether it records voice notes, and the
    size limits of its kinds (shown as help)."""
    kinds = media.WIDGET_KINDS.get(widget, media.WIDGET_KINDS["file"])
    s = services().settings
    names = {"photo": _("photos"), "audio": _("voice notes"), "video": _("videos"), "document": _("PDF documents")}
    limits = "; ".join(_("%(kind)s up to %(mb)s MB", kind=names[k], mb=f"{attachments.limit_mb(s, k):g}")
                       for k in media.KINDS if k in kinds)
    return {"accept": media.accept(kinds), "records": "audio" in kinds, "limits": limits, "kinds": kinds}
