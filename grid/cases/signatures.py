"""Handwritten signatures (手写签名) on the verify task: a PNG drawn on the page's signature pad.

Why a module of its own: the pad sends the drawing as a `data:image/png;base64,...` URL in a
form field, which is anything a client cares to send. Before it becomes an attachment it must be
a real PNG (magic number, and Pillow decodes it whole), at most MAX_BYTES, within the pad's
dimensions (no decompression bomb: the header is read before the pixels) and not blank. What is
kept is a fresh greyscale PNG re-encoded from the pixels on white, so no ancillary chunk (text,
EXIF, ICC) a client put in survives and every rendition (thumbnail, screen size) shows ink on
white. Refusals are `SignatureRefused` (an InvalidData with a `code`), never a 500.

The PNG becomes an ordinary attachment of the case: `check` returns it checked, not stored, like
any upload of a form (`grid.cases.attachments.check`); the route stores it once the whole form is
valid and links it to the case. The verify task's completed data names it (`x-image` of the
signature field), which is what links it to the verify step and lets the timeline and the case
page show it.
"""
from __future__ import annotations

import base64
import binascii
import io
import re
import warnings

from engine.errors import InvalidData
from grid.cases import attachments

MAX_BYTES = 300 * 1024  # a pad drawing at 3x pixel ratio is 20-80 KB
MIN_SIZE = (60, 30)  # width, height in pixels
MAX_SIZE = (3000, 1500)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_DATA_URL = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=\s]+)")


class SignatureRefused(InvalidData):
    """A signature that is not stored; `code` is one of format, size, dimensions, empty."""

    def __init__(self, code: str, message: str, field: str = ""):
        super().__init__(message, [{"path": field, "message": message, "validator": "signature", "code": code}])
        self.code = code


def decode(value: str, field: str = "") -> bytes:
    """The PNG bytes of a pad's data URL, checked; SignatureRefused otherwise."""
    m = _DATA_URL.fullmatch((value or "").strip())
    if m is None:
        raise SignatureRefused("format", "the signature is not a PNG image", field)
    if len(m.group(1)) > (MAX_BYTES * 4) // 3 + 8:
        raise SignatureRefused("size", f"the signature is larger than {MAX_BYTES // 1024} KB", field)
    try:
        raw = base64.b64decode(re.sub(r"\s+", "", m.group(1)), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRefused("format", "the signature is not a PNG image", field) from None
    if len(raw) > MAX_BYTES:
        raise SignatureRefused("size", f"the signature is larger than {MAX_BYTES // 1024} KB", field)
    if not raw.startswith(PNG_MAGIC):
        raise SignatureRefused("format", "the signature is not a PNG image", field)
    return raw


def clean_png(raw: bytes, field: str = "") -> bytes:
    """A fresh PNG of the drawing's pixels, after checking dimensions and that something is drawn."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw), formats=["PNG"])
            w, h = img.size  # from the header, before any pixel is decoded
            if not (MIN_SIZE[0] <= w <= MAX_SIZE[0] and MIN_SIZE[1] <= h <= MAX_SIZE[1]):
                raise SignatureRefused("dimensions", f"the signature must be {MIN_SIZE[0]}x{MIN_SIZE[1]} to "
                                                     f"{MAX_SIZE[0]}x{MAX_SIZE[1]} pixels", field)
            img.load()
            rgba = img.convert("RGBA")
            del img
    except SignatureRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, EOFError):
        raise SignatureRefused("format", "the signature is not a PNG image", field) from None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    grey = Image.alpha_composite(white, rgba).convert("L")
    # ink: some pixel clearly darker than paper
    if grey.point(lambda v: 255 if v < 160 else 0).getbbox() is None:
        raise SignatureRefused("empty", "the signature is empty", field)
    out = io.BytesIO()
    grey.save(out, format="PNG", optimize=True)
    return out.getvalue()


def data_url(png: bytes) -> str:
    """A PNG as the data URL the pad sends (to put a checked drawing back on a refused form)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def check(svc, value: str, field: str = "") -> tuple[attachments.Checked, bytes]:
    """A pad's data URL checked and cleaned, as an upload ready to be saved with the form's other
    uploads (`attachments.save`), and the clean PNG; SignatureRefused (or the attachment checks'
    UploadRefused) if it is not a usable signature."""
    png = clean_png(decode(value, field), field)
    return attachments.check(svc, "signature.png", io.BytesIO(png), images_only=True, field=field), png
