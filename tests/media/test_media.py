"""Judging uploads by their bytes, and the photo renditions pages show: upright, small, and
with no EXIF (no GPS position) left in them; HEIC decoded to a JPEG every browser shows."""
from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import ExifTags, Image

from grid.cases import media
from tests.media import helpers as h


@pytest.mark.parametrize("data, expected", [
    (h.small_jpeg(), "image/jpeg"),
    (h.heic(64, 48), "image/heic"),
    (h.mp4(b"soun", b"M4A "), "audio/mp4"),  # Safari's MediaRecorder, iPhone voice memos
    (h.mp4(b"soun", b"isom"), "audio/mp4"),  # an "mp4" with only a sound track is a voice note
    (h.mp4(b"vide", b"isom"), "video/mp4"),
    (h.mp4(b"vide", b"qt  "), "video/quicktime"),  # iPhone .mov
    (h.mp4(b"vide", b"3gp4"), "video/3gpp"),
    (h.webm(b"A_OPUS"), "audio/webm"),  # Chrome's MediaRecorder
    (h.webm(b"V_VP8"), "video/webm"),
    (h.ogg_opus(), "audio/ogg"),
    (b"ID3\x04\x00" + b"\0" * 100, "audio/mpeg"),
    (b"\xff\xfb\x90\x64" + b"\0" * 100, "audio/mpeg"),
    (b"#!AMR\n" + b"\0" * 100, "audio/amr"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
    (b"%PDF-1.7", "application/pdf"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'>", None),
    (b"MZ\x90\x00" + b"\0" * 60, None),  # a Windows program named voice.mp3 stays refused
    (b"\x1a\x45\xdf\xa3" + b"\0" * 60, None),  # Matroska that is not WebM, or no known track
    (b"\0\0\0\x18ftypavif" + b"\0" * 40, None),
])
def test_sniff_by_content_not_by_name(data, expected):
    assert media.sniff(data) == expected


def test_widgets_take_their_kinds():
    assert media.WIDGET_KINDS["photo"] == {"photo"}
    assert media.WIDGET_KINDS["media"] == {"audio", "video"}
    assert media.WIDGET_KINDS["file"] == set(media.KINDS)
    assert "audio/*" in media.accept(media.WIDGET_KINDS["audio"])
    assert "image/heic" in media.accept(media.WIDGET_KINDS["photo"])


def test_renditions_are_upright_small_and_carry_no_exif():
    original = h.noisy_jpeg(1600, 1200, 90)  # landscape pixels, EXIF Orientation 6: a portrait photo
    with Image.open(io.BytesIO(original)) as im:
        assert im.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the original has a position
    out = {r.name: r for r in media.renditions(original)}
    assert set(out) == {"thumb", "screen"}
    for r in out.values():
        assert r.content_type == "image/jpeg" and r.data.startswith(b"\xff\xd8")
        assert b"Exif" not in r.data and b"TestPhone" not in r.data  # no APP1 block at all
        with Image.open(io.BytesIO(r.data)) as im:
            assert not im.getexif() and not im.getexif().get_ifd(ExifTags.IFD.GPSInfo)
            w, hh = im.size
            assert hh > w, "EXIF orientation applied: the portrait photo stands upright"
            assert max(w, hh) == media.RENDITIONS[r.name]
    assert len(out["thumb"].data) < 60_000 < len(original)


def test_heic_gets_jpeg_renditions_without_exif():
    original = h.heic(800, 600)
    out = {r.name: r for r in media.renditions(original)}
    thumb = out["thumb"]
    assert thumb.content_type == "image/jpeg" and b"Exif" not in thumb.data
    with Image.open(io.BytesIO(thumb.data)) as im:
        assert im.format == "JPEG" and im.size == (320, 240)
        assert im.getpixel((10, 10))[0] > 200 and im.getpixel((300, 230))[2] > 150  # the picture, not a blank


def test_transparent_png_stays_png():
    im = Image.new("RGBA", (500, 200), (0, 0, 0, 0))
    im.paste((0, 0, 0, 255), (10, 90, 490, 110))  # a drawn signature line
    buf = io.BytesIO()
    im.save(buf, "PNG")
    out = {r.name: r for r in media.renditions(buf.getvalue())}
    assert out["thumb"].content_type == "image/png"
    with Image.open(io.BytesIO(out["thumb"].data)) as t:
        assert t.mode == "RGBA" and t.getpixel((0, 0))[3] == 0


def test_probe_refuses_pixel_bombs_before_decoding():
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    with pytest.raises(media.BadImage):
        media.probe(bomb)
    with pytest.raises(media.BadImage):
        media.probe(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert media.probe(h.small_jpeg(64, 48)) == (64, 48)
