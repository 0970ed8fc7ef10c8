"""What an upload is, judged by its bytes, and the renditions of photos that pages show.

* Kinds: photo (JPEG, PNG, WebP, HEIC/HEIF), audio (WebM/Opus as Chrome's MediaRecorder gives,
  Ogg, MP4/M4A as Safari's gives, MP3, AAC, AMR from older Android recorders, WAV), video (MP4,
  WebM, QuickTime .mov, 3GP) and document (PDF). The magic bytes decide, never the name or the
  client's Content-Type; for the ISO-BMFF and Matroska containers the track types inside decide
  between audio and video, since phones name both ".mp4" or ".webm".
* A form field accepts the kinds of its widget (`WIDGET_KINDS`: photo, audio, video, media =
  voice notes and videos, file = all); each kind has its own size limit (GRIDFLOW_MAX_PHOTO_MB ...).
* A photo gets two renditions, made once when it is stored: a thumbnail (320 px on the long edge)
  and a screen size (1600 px), with the EXIF orientation applied and every metadata block but the
  colour profile dropped, so no GPS position or camera serial leaves the server with them. The
  original is kept unchanged and sent only as an explicit download. HEIC (iPhones) is decoded with
  pillow-heif, so its renditions are JPEGs every browser shows.
* A video gets no rendition: a frame of it needs ffmpeg, which Gridflow does not require and the
  machines it was built and tested on do not have (`which ffmpeg` finds nothing). Every video shows
  the same placeholder poster (VIDEO_POSTER, a static picture of a film frame with a play mark)
  until it is started, and the player loads nothing before that (preload="none").
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image, ImageOps

try:  # HEIC/HEIF decoding; without it HEIC photos are kept but have no rendition
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:  # pragma: no cover - pillow-heif is a pinned dependency
    pillow_heif = None

TYPES: dict[str, tuple[str, str]] = {  # content type -> (kind, extension)
    "image/jpeg": ("photo", ".jpg"), "image/png": ("photo", ".png"), "image/webp": ("photo", ".webp"),
    "image/heic": ("photo", ".heic"),
    "audio/webm": ("audio", ".webm"), "audio/ogg": ("audio", ".ogg"), "audio/mp4": ("audio", ".m4a"),
    "audio/mpeg": ("audio", ".mp3"), "audio/aac": ("audio", ".aac"), "audio/amr": ("audio", ".amr"),
    "audio/wav": ("audio", ".wav"), "audio/3gpp": ("audio", ".3gp"),
    "video/mp4": ("video", ".mp4"), "video/webm": ("video", ".webm"), "video/quicktime": ("video", ".mov"),
    "video/3gpp": ("video", ".3gp"),
    "application/pdf": ("document", ".pdf"),
}
KINDS = ("photo", "audio", "video", "document")
WIDGET_KINDS: dict[str, frozenset[str]] = {
    "photo": frozenset({"photo"}), "audio": frozenset({"audio"}), "video": frozenset({"video"}),
    "media": frozenset({"audio", "video"}), "file": frozenset(KINDS),
}
# what <input accept> offers per kind: types and extensions, since phones label files loosely
ACCEPT = {
    "photo": "image/jpeg,image/png,image/webp,image/heic,image/heif,.heic,.heif",
    "audio": "audio/*,.m4a,.amr,.opus",
    "video": "video/mp4,video/webm,video/quicktime,video/3gpp,.mov,.mp4",
    "document": "application/pdf",
}
RENDITIONS = {"thumb": 320, "screen": 1600}
BROWSER_PLAYS = {"audio/webm", "audio/ogg", "audio/mp4", "audio/mpeg", "audio/aac", "audio/wav",
                 "video/mp4", "video/webm", "video/quicktime"}  # the rest (AMR, 3GP) is a download
_HEIC_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_HANDLER = re.compile(rb"hdlr.{8}(vide|soun)", re.S)
VIDEO_POSTER = "img/video-poster.svg"  # under web/static: the poster of every video (no ffmpeg)
MAX_PIXELS = 80_000_000  # a photo of more pixels is refused (decompression bombs)


def kind_of(content_type: str) -> str:
    return TYPES.get(content_type, ("document", ""))[0]


def extension(content_type: str) -> str:
    return TYPES[content_type][1]


def accept(kinds: frozenset[str] | set[str]) -> str:
    return ",".join(ACCEPT[k] for k in KINDS if k in kinds)


def _iso_bmff(data: bytes) -> str | None:
    brand = data[8:12]
    if brand in _HEIC_BRANDS:
        return "image/heic"
    handlers = {m.group(1) for m in _HANDLER.finditer(data)}
    if b"vide" in handlers:
        return "video/quicktime" if brand == b"qt  " else "video/3gpp" if brand.startswith(b"3g") else "video/mp4"
    if b"soun" in handlers or brand in (b"M4A ", b"M4B "):
        return "audio/3gpp" if brand.startswith(b"3g") else "audio/mp4"
    return None


def _matroska(data: bytes) -> str | None:
    head = data[:65536]
    if b"webm" not in head[:64]:
        return None
    if any(c in head for c in (b"V_VP8", b"V_VP9", b"V_AV1", b"V_MPEG4")):
        return "video/webm"
    if b"A_OPUS" in head or b"A_VORBIS" in head:
        return "audio/webm"
    return None


def sniff(data: bytes) -> str | None:
    """The content type the bytes prove, among the accepted ones, or None. Give it the whole
    file: an MP4's track list may sit at its end."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[4:8] == b"ftyp":
        return _iso_bmff(data)
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return _matroska(data)
    if data.startswith(b"OggS"):
        head = data[:4096]
        return "audio/ogg" if b"OpusHead" in head or b"\x01vorbis" in head else None
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"#!AMR"):
        return "audio/amr"
    if data.startswith(b"ID3"):
        return "audio/mpeg"
    if len(data) >= 4 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        layer = (data[1] >> 1) & 3
        if layer:  # MPEG-1/2 layer I-III frame header
            return "audio/mpeg"
        if data[1] & 0xF6 == 0xF0:  # ADTS: AAC without a container
            return "audio/aac"
    return None


class BadImage(ValueError):
    """Bytes that look like a photo but cannot be decoded, or are too large to decode safely."""


def probe(data: bytes) -> tuple[int, int]:
    """The photo's size in pixels, read from its header (cheap): refuses what Pillow cannot open
    or a pixel count past MAX_PIXELS, before anything is stored."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for damaged files
        raise BadImage(str(e)) from None
    if w * h > MAX_PIXELS:
        raise BadImage(f"{w}x{h} pixels is more than {MAX_PIXELS}")
    return w, h


@dataclass(frozen=True)
class Rendition:
    name: str  # thumb | screen
    data: bytes
    content_type: str  # image/jpeg, or image/png for a photo with transparency (a signature)


def renditions(data: bytes) -> list[Rendition]:
    """The thumbnail and screen renditions of a photo: upright, metadata-free, JPEG (PNG when
    the source has transparency). Raises BadImage if the photo cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as src:
            if src.format == "JPEG":
                src.draft("RGB", (RENDITIONS["screen"], RENDITIONS["screen"]))  # decode at a fraction: fast
            icc = src.info.get("icc_profile")
            upright = ImageOps.exif_transpose(src)  # a copy, turned as the camera meant
        alpha = upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info)
        base = upright.convert("RGBA" if alpha else "RGB")
    except Exception as e:  # noqa: BLE001
        raise BadImage(str(e)) from None
    out = []
    for name, edge in sorted(RENDITIONS.items(), key=lambda kv: -kv[1]):
        im = base.copy()
        im.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        im.info = {}  # nothing of the source's metadata (EXIF, XMP, comments) is carried over
        buf = io.BytesIO()
        extra = {"icc_profile": icc} if icc else {}
        if alpha:
            im.save(buf, "PNG", optimize=True, **extra)
        else:
            im.save(buf, "JPEG", quality=72 if name == "thumb" else 82, optimize=True, progressive=True, **extra)
        out.append(Rendition(name, buf.getvalue(), "image/png" if alpha else "image/jpeg"))
        base = im  # the screen rendition is a fine source for the thumbnail
    return out
