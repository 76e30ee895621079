"""Photos (an action's, a resident's with a statement, and any later kind): checked, cleaned, stored.

The browser's content type and the file name prove nothing, so Pillow decodes the file: only
JPEG, PNG and WebP of sensible size are accepted. :func:`check_photo` is the only way to a
:class:`CheckedPhoto`, and it re-encodes the pixels into a new file without any metadata: EXIF
(GPS position, camera serial, time), XMP, ICC profiles and text chunks all stay behind, so a
child's photo on the public AMBER feed never tells where it was taken. The EXIF orientation is
applied to the pixels first, so the photo still stands upright.

:func:`write_photo` puts a checked photo on disk atomically; :func:`store_photo` does that for an
action (``<data_dir>/photos/<action id>.<ext>``) and sets its ``photo_path``, audited. Every photo
is served through :func:`photo_file`, which also cleans a photo stored before this rule existed.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.models import Action
from burgernet.repositories import record_audit
from burgernet.settings import Settings
from callback_api.errors import InputInvalid

MAX_PHOTO_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000
MIN_SIDE = 32
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}
JPEG_QUALITY = 90
WEBP_QUALITY = 90


class PhotoError(InputInvalid):
    """Not an acceptable photo; the message says why."""

    code: ClassVar[str] = "photo.invalid"


@dataclass(frozen=True)
class CheckedPhoto:
    """A decoded, re-encoded photo without metadata; made only by :func:`check_photo`."""

    data: bytes
    extension: str
    mime_type: str
    width: int
    height: int


def _without_metadata(image: Image.Image, image_format: str) -> bytes:
    """The pixels, upright, in a new file of the same format that carries nothing else."""
    upright = ImageOps.exif_transpose(image)
    keeps_alpha = image_format != "JPEG" and ("A" in upright.getbands() or "transparency" in upright.info)
    mode = "RGBA" if keeps_alpha else ("L" if upright.mode in ("1", "L", "I;16") else "RGB")
    # A new image from the raw pixels: no info dict, no EXIF, no ICC profile, no text chunks.
    converted = upright.convert(mode)
    clean = Image.frombytes(mode, converted.size, converted.tobytes())
    out = io.BytesIO()
    if image_format == "JPEG":
        clean.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    elif image_format == "PNG":
        clean.save(out, format="PNG", optimize=True)
    else:
        clean.save(out, format="WEBP", quality=WEBP_QUALITY)
    return out.getvalue()


def check_photo(data: bytes) -> CheckedPhoto:
    """Decode ``data``, refuse what is not an acceptable photo, and return it stripped of metadata."""
    if not data:
        raise PhotoError("the photo file is empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise PhotoError(f"the photo is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format or ""
            width, height = image.size
            if image_format not in FORMATS:
                raise PhotoError(f"a photo must be JPEG, PNG or WebP, not {image_format or 'unknown'}")
            if width * height > MAX_PIXELS:
                raise PhotoError(f"the photo has too many pixels ({width}×{height})")
            if min(width, height) < MIN_SIDE:
                raise PhotoError(
                    f"the photo is too small ({width}×{height}); at least {MIN_SIDE} pixels a side"
                )
            image.verify()
        # verify() leaves the image unusable: open it again to decode the pixels.
        with Image.open(io.BytesIO(data)) as image:
            cleaned = _without_metadata(image, image_format)
    except PhotoError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise PhotoError("the file is not a readable image (JPEG, PNG or WebP)") from None
    if len(cleaned) > MAX_PHOTO_BYTES:
        # Re-encoding rarely grows a photo, but the limit holds for what is stored, too.
        raise PhotoError(f"the photo is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    extension, mime_type = FORMATS[image_format]
    with Image.open(io.BytesIO(cleaned)) as stored:
        width, height = stored.size
    return CheckedPhoto(cleaned, extension, mime_type, width, height)


def photos_dir(settings: Settings) -> Path:
    return settings.data_dir / "photos"


def write_photo(path: Path, photo: CheckedPhoto) -> Path:
    """Write a checked photo to ``path`` atomically (a reader never sees half a photo)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".part")
    temporary.write_bytes(photo.data)
    temporary.replace(path)
    return path


def store_photo(
    settings: Settings,
    sessions: sessionmaker[Session],
    action_id: int,
    photo: CheckedPhoto,
    *,
    actor: str,
    source: str,
) -> Path:
    path = write_photo(photos_dir(settings) / f"{int(action_id)}.{photo.extension}", photo)
    with session_scope(sessions) as session:
        action = session.get(Action, action_id)
        if action is None:
            path.unlink(missing_ok=True)
            raise PhotoError(f"no action {action_id}")
        action.photo_path = str(path)
        record_audit(
            session,
            actor=actor,
            verb="photo",
            entity="action",
            entity_id=action_id,
            detail={"bytes": len(photo.data), "size": f"{photo.width}x{photo.height}"},
            source=source,
        )
    for extension, _mime in FORMATS.values():
        # A replaced photo of another format must not linger on disk (with whatever it carried).
        if extension != photo.extension:
            path.with_suffix(f".{extension}").unlink(missing_ok=True)
    return path


def photo_file(settings: Settings, photo_path: str | None) -> Path | None:
    """The stored photo, only when it lies inside the photos folder (never follow a bad path).

    A photo stored before photos were cleaned still carries its metadata; it is cleaned here, in
    place and once, before it is served for the first time (see :func:`clean_stored_photo`).
    """
    if not photo_path:
        return None
    path = Path(photo_path).resolve()
    if not path.is_relative_to(photos_dir(settings).resolve()) or not path.is_file():
        return None
    clean_stored_photo(path)
    return path


# What a photo may carry about its maker beyond the pixels, as Pillow reports it on opening.
METADATA_KEYS = frozenset({"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "photoshop"})


def has_metadata(path: Path) -> bool:
    """True when the file carries EXIF, XMP, an ICC profile or a comment (reads the header only)."""
    with Image.open(path) as image:
        return bool(METADATA_KEYS & set(image.info)) or bool(image.getexif())


def clean_stored_photo(path: Path) -> bool:
    """Re-encode a stored photo without metadata when it has any; True when it was rewritten.

    A file that cannot be read is left alone (it is served as it is, like before).
    """
    try:
        if not has_metadata(path):
            return False
        cleaned = check_photo(path.read_bytes())
    except (PhotoError, UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False
    # A name of its own: two requests cleaning the same photo at once must not share a file.
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(4)}.part")
    temporary.write_bytes(cleaned.data)
    temporary.replace(path)
    return True
