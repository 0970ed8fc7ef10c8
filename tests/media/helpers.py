"""Media for the tests, made here: a phone-like JPEG (noise, EXIF orientation and a GPS
position), a HEIC photo (pillow-heif), and the container headers of the audio and video formats
phones and browsers produce (enough bytes to be judged by content)."""
from __future__ import annotations

import io
import os
import random
import struct

from PIL import ExifTags, Image

GPS = {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (32.0, 1.0, 16.68),
       ExifTags.GPS.GPSLongitudeRef: "E", ExifTags.GPS.GPSLongitude: (112.0, 8.0, 35.5)}


def exif(orientation: int = 6) -> Image.Exif:
    e = Image.Exif()
    e[ExifTags.Base.Orientation] = orientation
    e[ExifTags.Base.Make] = "TestPhone"
    e.get_ifd(ExifTags.IFD.GPSInfo).update(GPS)
    return e


def noisy_jpeg(width: int = 2592, height: int = 1944, quality: int = 93, orientation: int = 6, seed: int = 1) -> bytes:
    """A landscape JPEG as a phone takes it: noisy (so it compresses as badly as a real photo,
    about 4 MB at the defaults), stored sideways with EXIF Orientation=6 (turn 90° to view),
    and the place it was taken in EXIF GPS."""
    rnd = random.Random(seed)
    noise = Image.frombytes("RGB", (width, height), rnd.randbytes(width * height * 3))
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    im = Image.blend(base, noise, 0.6)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, exif=exif(orientation))
    return buf.getvalue()


def small_jpeg(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 60, 40)).save(buf, "JPEG", exif=exif(1))
    return buf.getvalue()


def heic(width: int = 640, height: int = 480) -> bytes:
    """An iPhone-style HEIC photo (x265 through pillow-heif), with EXIF GPS."""
    import pillow_heif

    im = Image.new("RGB", (width, height), (30, 120, 200))
    im.paste((250, 250, 0), (0, 0, width // 2, height // 2))
    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, quality=60, exif=exif(1).tobytes())
    return buf.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(handler: bytes, brand: bytes = b"isom", size: int = 4096) -> bytes:
    """An ISO-BMFF file: ftyp, then a moov with one track whose handler is `handler`
    (b"soun" or b"vide"), then filler standing for the media data."""
    hdlr = _box(b"hdlr", b"\0\0\0\0" + b"\0\0\0\0" + handler + b"\0" * 12 + b"track\0")
    moov = _box(b"moov", _box(b"trak", _box(b"mdia", hdlr)))
    head = _box(b"ftyp", brand + b"\0\0\0\0" + brand + b"mp41") + moov
    return head + _box(b"mdat", os.urandom(max(0, size - len(head) - 8)))


def webm(codec: bytes, size: int = 4096) -> bytes:
    """The start of a WebM file (EBML header with DocType webm, a track naming `codec`, such as
    b"A_OPUS" from Chrome's MediaRecorder or b"V_VP8")."""
    ebml = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84webm" \
           b"\x42\x87\x81\x04\x42\x85\x81\x02"
    track = b"\x16\x54\xae\x6b\x8c\xae\x8a\x86" + bytes([0x80 | len(codec)]) + codec
    return ebml + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff" + track + os.urandom(size)


def ogg_opus(size: int = 2048) -> bytes:
    return b"OggS\x00\x02" + b"\0" * 20 + b"\x01\x13OpusHead\x01\x01" + os.urandom(size)
