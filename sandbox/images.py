"""Images in a conversation, as the sandbox sees them: a media type and a size in bytes for
inline data (a data URI, Anthropic's base64 source, Gemini's inlineData), the host for a URL.

An image is described the same way whatever wire format brought it (`image/png, 68 bytes`;
`an image from example.com`), so a translated conversation gets the same answer. Its input
tokens follow OpenAI's rule for high detail: 85, plus 170 per 512-pixel tile of the image
scaled to fit 2048 x 2048 and then to a shortest side of at most 768; the size is read from a
PNG, GIF or JPEG header, and an image whose size is unknown counts as 1024 x 1024.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

BASE_TOKENS, TILE_TOKENS, TILE = 85, 170, 512
UNKNOWN_SIDE = 1024
_URL_SAFE = str.maketrans("-_", "+/")
_DATA_URI = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*;base64,(?P<data>.*)", re.DOTALL)


class InvalidImage(ValueError):
    """An image part that cannot be read (each wire format says so in its own words)."""


@dataclass(frozen=True)
class Image:
    media_type: str | None = None
    size: int | None = None  # bytes of inline data
    host: str | None = None  # the URL's host
    width: int | None = None
    height: int | None = None
    low_detail: bool = False

    def describe(self) -> str:
        if self.host is not None:
            return f"an image from {self.host}"
        return f"{self.media_type or 'an image'}, {self.size} bytes"

    def canonical(self) -> str:
        return f"[image: {self.describe()}]"

    def as_log(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None and v is not False}

    @property
    def tokens(self) -> int:
        if self.low_detail:
            return BASE_TOKENS
        width, height = _scaled(self.width or UNKNOWN_SIDE, self.height or UNKNOWN_SIDE)
        return BASE_TOKENS + TILE_TOKENS * math.ceil(width / TILE) * math.ceil(height / TILE)


def inline_image(media_type: str | None, data, low_detail: bool = False) -> Image:
    """An image from base64 data, in the standard alphabet or the URL-safe one (google-genai's)."""
    if not isinstance(data, str):
        raise InvalidImage("image data must be a base64 string")
    try:
        raw = base64.b64decode(data.translate(_URL_SAFE), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage("image data is not valid base64") from None
    width, height = _dimensions(raw)
    return Image(media_type, len(raw), None, width, height, low_detail)


def url_image(url, low_detail: bool = False) -> Image:
    """An image from a URL: a data URI is read as inline data, any other URL gives its host."""
    if not isinstance(url, str) or not url:
        raise InvalidImage("an image URL must be a non-empty string")
    inline = _DATA_URI.fullmatch(url)
    if inline:
        return inline_image(inline["type"], inline["data"], low_detail)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "gs") or not parts.hostname:
        raise InvalidImage(f"an image URL must be an http(s) URL or a base64 data URI, not {url[:40]!r}")
    return Image(host=parts.hostname, low_detail=low_detail)


def _scaled(width: int, height: int) -> tuple[float, float]:
    factor = min(1.0, 2048 / max(width, height))
    width, height = width * factor, height * factor
    factor = min(1.0, 768 / min(width, height))
    return width * factor, height * factor


def _dimensions(raw: bytes) -> tuple[int | None, int | None]:
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) >= 24:
        return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    if raw[:4] == b"GIF8" and len(raw) >= 10:
        return int.from_bytes(raw[6:8], "little"), int.from_bytes(raw[8:10], "little")
    if raw[:2] == b"\xff\xd8":
        return _jpeg_dimensions(raw)
    return None, None


def _jpeg_dimensions(raw: bytes) -> tuple[int | None, int | None]:
    """From the first start-of-frame segment (markers C0-CF but C4, C8 and CC)."""
    at = 2
    while at + 9 <= len(raw) and raw[at] == 0xFF:
        marker, length = raw[at + 1], int.from_bytes(raw[at + 2 : at + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(raw[at + 7 : at + 9], "big"), int.from_bytes(raw[at + 5 : at + 7], "big")
        at += 2 + length
    return None, None
