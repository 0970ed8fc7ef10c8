"""The case page of a case with a 4 MB phone photo weighs under 600 KB in total, measured over
HTTP as a browser loads it: the HTML and every image it references (stylesheets and scripts are
static and cached, and not counted). Before renditions, the photo itself was sent, three times."""
from __future__ import annotations

import re
from html import unescape

import pytest

from tests.media import helpers as h
from tests.server_helpers import Client, serve_in_thread
from tests.web_helpers import make_app

LIMIT = 600 * 1024
REPORT = {"grid": "420602003005015", "category": "municipal",
          "description": "南山家属院雨污分流改造，附现场照片。", "location.text": "襄城区檀溪社区南山家属院",
          "parties.0.name": "南山家属院居民代表", "parties.0.phone": "13800000001"}


@pytest.fixture
def served(svc, tmp_path):
    """The app on a real HTTP server (werkzeug, a thread) on 127.0.0.1."""
    with serve_in_thread(make_app(svc, tmp_path)) as port:
        yield port


def page_weight(client: Client, path: str) -> tuple[int, dict[str, int]]:
    """(bytes of the HTML, {image URL: bytes}) for every distinct <img src> of the page."""
    page = client.get(path)
    assert page.status == 200, page.text[:500]
    images = {}
    for src in sorted(set(unescape(s) for s in re.findall(r'<img[^>]+src="([^"]+)"', page.text))):
        r = client.get(src)
        assert r.status == 200, src
        images[src] = len(r.raw)
    return len(page.raw), images


def test_case_page_with_a_4mb_photo_weighs_under_600kb(served, svc):
    from grid.org.passwords import DEMO_PASSWORD

    photo = h.noisy_jpeg()
    assert len(photo) > 4_000_000
    client = Client(served)
    client.sign_in("jiangranran", DEMO_PASSWORD)
    form = client.get("/report")
    page = client.post("/report", {**REPORT, "csrf_token": form.token()}, [("photos", "IMG_0001.jpg", photo, "image/jpeg")])
    m = re.fullmatch(r"/cases/(\d+)", page.path)
    assert m, (page.status, page.text[:1000])
    html, images = page_weight(client, page.path)
    total = html + sum(images.values())
    print(f"case page: HTML {html} B + {len(images)} image(s) {sum(images.values())} B = {total} B")
    assert images and all(src.endswith("/thumb") for src in images), images  # thumbnails, never the photo
    assert total < LIMIT, (html, images)
    # the screen rendition behind the link is also far smaller than the original
    link = re.search(r'<a href="(/attachments/[0-9a-f-]+)"><img class="thumb"', page.text).group(1)
    assert len(client.get(link).raw) < len(photo) / 3
