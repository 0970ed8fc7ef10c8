"""Videos have no thumbnail (issue 12, scope 7): a frame would need ffmpeg, which Gridflow does
not require. A video is stored without renditions, asking for its thumbnail is a clean 404, and
the player shows the placeholder poster (grid/cases/media.py VIDEO_POSTER) until it is started."""
from __future__ import annotations

import re

from sqlalchemy import select

from grid.cases import media
from grid.cases.models import Attachment
from tests.media import helpers as h
from tests.media.test_uploads import files_in, post_report
from tests.web_helpers import login


def _report_with_video(app, svc):
    client = login(app, "jiangranran")
    r = post_report(client, recordings=[("clip.mp4", h.mp4(b"vide", b"isom", 50_000))])
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    case_id = int(r.headers["Location"].rsplit("/", 1)[1])
    with svc.db.read() as s:
        (video,) = s.scalars(select(Attachment).where(Attachment.case_id == case_id))
    return client, case_id, video


def test_a_video_is_stored_without_renditions_and_has_no_thumbnail(app, svc):
    client, _case_id, video = _report_with_video(app, svc)
    assert video.content_type == "video/mp4"
    assert files_in(svc) == [video.storage_key], "the original only: no frame is taken without ffmpeg"
    assert client.get(f"/attachments/{video.id}/thumb").status_code == 404


def test_the_placeholder_poster_is_served(app):
    client = login(app, "jiangranran")
    r = client.get(f"/static/{media.VIDEO_POSTER}")
    assert r.status_code == 200 and r.mimetype == "image/svg+xml"
    assert b"<svg" in r.data and b"<script" not in r.data


def test_the_case_page_video_shows_the_placeholder_poster(app, svc):
    client, case_id, video = _report_with_video(app, svc)
    page = client.get(f"/cases/{case_id}").get_data(as_text=True)
    tag = re.search(rf'<video[^>]+src="/attachments/{video.id}"[^>]*>', page).group(0)
    poster = re.search(r'poster="([^"]+)"', tag)
    assert poster and media.VIDEO_POSTER in poster.group(1)
    assert client.get(poster.group(1)).status_code == 200
