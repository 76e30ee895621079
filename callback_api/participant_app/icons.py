"""The app's icons, drawn with Pillow when first asked for (no binary files in the repository).

A white map pin with a blue dot on Burgernet blue. The pin stays inside the middle 60 %, the
safe zone of a *maskable* icon, so a phone that cuts the icon into a circle or a rounded
square never cuts the pin.
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageDraw

SIZES = (192, 512)
BLUE = (11, 61, 145)
WHITE = (255, 255, 255)
# Drawn this many times larger, then scaled down: smooth edges without an anti-aliasing pass.
_OVERSAMPLE = 4


@lru_cache(maxsize=len(SIZES))
def icon_png(size: int) -> bytes:
    if size not in SIZES:
        raise ValueError(f"no icon of {size} px; sizes: {SIZES}")
    big = size * _OVERSAMPLE
    image = Image.new("RGB", (big, big), BLUE)
    draw = ImageDraw.Draw(image)
    centre = big / 2
    radius = big * 0.17  # the pin's head
    head_y = big * 0.42
    draw.ellipse((centre - radius, head_y - radius, centre + radius, head_y + radius), fill=WHITE)
    # The point: a triangle from the head's sides down to the tip.
    tip_y = big * 0.78
    draw.polygon(
        [
            (centre - radius * 0.92, head_y + radius * 0.38),
            (centre + radius * 0.92, head_y + radius * 0.38),
            (centre, tip_y),
        ],
        fill=WHITE,
    )
    dot = radius * 0.42
    draw.ellipse((centre - dot, head_y - dot, centre + dot, head_y + dot), fill=BLUE)
    small = image.resize((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()
