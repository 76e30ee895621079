"""Action photos: checked to really be an image before anything is stored.

The browser's content type and the file name prove nothing, so Pillow decodes the file: only
JPEG, PNG and WebP of sensible size are accepted. The photo is stored under
``<data_dir>/photos/<action id>.<ext>`` and the action's ``photo_path`` set, audited.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from PIL import Image, UnidentifiedImageError
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


class PhotoError(InputInvalid):
    """Not an acceptable photo; the message says why."""

    code: ClassVar[str] = "photo.invalid"


@dataclass(frozen=True)
class CheckedPhoto:
    data: bytes
    extension: str
    mime_type: str
    width: int
    height: int


def check_photo(data: bytes) -> CheckedPhoto:
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
    except PhotoError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise PhotoError("the file is not a readable image (JPEG, PNG or WebP)") from None
    extension, mime_type = FORMATS[image_format]
    return CheckedPhoto(data, extension, mime_type, width, height)


def photos_dir(settings: Settings) -> Path:
    return settings.data_dir / "photos"


def store_photo(
    settings: Settings,
    sessions: sessionmaker[Session],
    action_id: int,
    photo: CheckedPhoto,
    *,
    actor: str,
    source: str,
) -> Path:
    folder = photos_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{int(action_id)}.{photo.extension}"
    temporary = path.with_suffix(".part")
    temporary.write_bytes(photo.data)
    temporary.replace(path)  # atomic: a reader never sees half a photo
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
    return path


def photo_file(settings: Settings, photo_path: str | None) -> Path | None:
    """The stored photo, only when it lies inside the photos folder (never follow a bad path)."""
    if not photo_path:
        return None
    path = Path(photo_path).resolve()
    if not path.is_relative_to(photos_dir(settings).resolve()) or not path.is_file():
        return None
    return path
