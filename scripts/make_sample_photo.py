"""Draw the sample news photo shipped in layouts/samples/ (a made-up rice-field scene).

Run once: .venv/bin/python scripts/make_sample_photo.py. The result is committed so the samples
and golden images do not depend on running this again.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter


def rice_field(width: int = 1600, height: int = 1067, seed: int = 7) -> Image.Image:
    """Return a painted scene: sky, sun, mountains, terraced rice fields and a commune house."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    horizon = int(height * 0.45)
    for y in range(horizon):
        t = y / horizon
        draw.line(
            [(0, y), (width, y)], fill=(int(90 + 120 * t), int(150 + 80 * t), int(220 + 20 * t))
        )
    draw.ellipse(
        (width * 0.72, height * 0.08, width * 0.72 + 110, height * 0.08 + 110), fill=(255, 236, 170)
    )
    for layer, (colour, base, amp) in enumerate(
        [((70, 110, 120), 0.30, 0.10), ((50, 95, 80), 0.36, 0.08), ((40, 85, 55), 0.42, 0.05)]
    ):
        points = [(0, height)]
        phase = rng.random() * 6
        for x in range(0, width + 20, 20):
            y = height * base - amp * height * (
                0.6 * math.sin(x / 180 + phase) + 0.4 * math.sin(x / 67 + layer)
            )
            points.append((x, int(y)))
        points.append((width, height))
        draw.polygon(points, fill=colour)
    for i in range(12):
        top = horizon + i * (height - horizon) // 12
        green = (
            60 + rng.randint(0, 40) + i * 8,
            140 + rng.randint(0, 50) + i * 4,
            40 + rng.randint(0, 20),
        )
        draw.rectangle((0, top, width, top + (height - horizon) // 12 + 1), fill=green)
        draw.line([(0, top), (width, top)], fill=(110, 90, 50), width=3)
        for x in range(rng.randint(0, 18), width, 18):
            draw.line([(x, top + 6), (x + 3, top + 18)], fill=(40, 110, 30), width=2)
    house = (int(width * 0.18), horizon - 40)
    draw.rectangle((house[0], house[1], house[0] + 220, house[1] + 110), fill=(235, 220, 190))
    draw.polygon(
        [(house[0] - 30, house[1]), (house[0] + 110, house[1] - 90), (house[0] + 250, house[1])],
        fill=(170, 50, 40),
    )
    draw.rectangle(
        (house[0] + 90, house[1] + 45, house[0] + 130, house[1] + 110), fill=(110, 70, 40)
    )
    draw.rectangle((house[0] + 180, house[1] - 150, house[0] + 184, house[1]), fill=(90, 90, 90))
    draw.rectangle(
        (house[0] + 184, house[1] - 150, house[0] + 244, house[1] - 110), fill=(218, 37, 29)
    )
    return image.filter(ImageFilter.GaussianBlur(0.6))


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "layouts/samples/dong-lua.jpg")
    rice_field().save(out, quality=85, optimize=True)
    print(out)
