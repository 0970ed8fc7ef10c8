"""Two web nodes that share no directory, only PostgreSQL and an S3-compatible bucket (moto's
server mode): a photo reported on node A is shown by node B, its thumbnail, its screen rendition
and the original download, and neither node wrote a byte of it to its local disk. Also measured
there: the case page with a 4 MB phone photo, as node B serves it, weighs under 600 KB."""
from __future__ import annotations

import re
from pathlib import Path

from grid.org.passwords import DEMO_PASSWORD
from tests.media import helpers as h
from tests.media.s3_helpers import CREDENTIALS, prefix, s3_server
from tests.media.test_page_weight import LIMIT, REPORT, page_weight
from tests.server_helpers import GRIDFLOW, Client, free_port, gunicorn_env, healthy, started, until

ROOT = Path(__file__).resolve().parents[2]


def test_a_photo_uploaded_on_one_node_is_shown_by_the_other_through_s3(pg_db, pg_url, tmp_path):
    from grid.cases.scenario import prepare

    prepare(pg_db, ROOT / "workflows", ROOT / "forms")
    with s3_server() as endpoint:
        storage_env = {"GRIDFLOW_STORAGE": f"s3://gridflow/{prefix()}", "GRIDFLOW_S3_ENDPOINT": endpoint, **CREDENTIALS}
        ports = free_port(), free_port()
        envs = []
        for name, port in zip("ab", ports, strict=True):
            node_tmp = tmp_path / f"node-{name}"  # each node its own GRIDFLOW_UPLOADS: nothing shared
            node_tmp.mkdir()
            envs.append(gunicorn_env(pg_url, node_tmp, port, **storage_env))
        with started([*GRIDFLOW, "serve", "--production"], envs[0], tmp_path, "node-a") as a, \
                started([*GRIDFLOW, "serve", "--production"], envs[1], tmp_path, "node-b") as b:
            for port, proc in zip(ports, (a, b), strict=True):
                until(lambda port=port: healthy(port), f"gunicorn on {port} answers /healthz", proc)
            on_a = Client(ports[0])
            on_a.sign_in("jiangranran", DEMO_PASSWORD)
            photo = h.noisy_jpeg()
            form = on_a.get("/report")
            page = on_a.post("/report", {**REPORT, "csrf_token": form.token()},
                             [("photos", "IMG_0001.jpg", photo, "image/jpeg")])
            m = re.fullmatch(r"/cases/(\d+)", page.path)
            assert page.status == 200 and m, (page.status, page.text[:1000])

            on_b = on_a.on(ports[1])
            html, images = page_weight(on_b, page.path)
            assert len(images) == 1 and next(iter(images)).endswith("/thumb"), images
            assert html + sum(images.values()) < LIMIT
            shown = on_b.get(page.path).text
            original = re.search(r'href="(/attachments/[0-9a-f-]+/original)"', shown).group(1)
            got = on_b.get(original)
            assert got.status == 200 and got.raw == photo
            screen = on_b.get(original.removesuffix("/original"))
            assert screen.status == 200 and screen.headers["Content-Type"] == "image/jpeg"
            assert b"Exif" not in screen.raw and len(screen.raw) < len(photo)
        for name in "ab":
            local = tmp_path / f"node-{name}" / "uploads"
            assert not local.exists() or not any(p.is_file() for p in local.rglob("*")), name
