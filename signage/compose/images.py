"""Decoding and fitting images safely: pixel limit, EXIF orientation, good scaling, placeholders."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from signage.errors import AssetError, ErrorCode
from signage.layout import Fit, Size

DEFAULT_MAX_PIXELS = 40_000_000  # a 8K x 5K photo; anything larger is refused before decoding

AssetResolver = Callable[[str], Path]
_ORIENTATION = 0x0112


def folder_assets(folder: Path) -> AssetResolver:
    """Return a resolver of asset names to files inside ``folder``.

    The resolver raises AssetError (asset.missing) for a name that is absolute, leaves the
    folder (``..``), or does not exist.
    """
    root = folder.resolve()

    def resolve(name: str) -> Path:
        candidate = (root / name).resolve()
        if Path(name).is_absolute() or not candidate.is_relative_to(root):
            raise AssetError(
                ErrorCode.ASSET_MISSING, "asset name must stay inside the content folder", path=name
            )
        if not candidate.is_file():
            raise AssetError(ErrorCode.ASSET_MISSING, "asset file not found", path=name)
        return candidate

    return resolve


def load_image(
    path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, at_least: Size | None = None
) -> Image.Image:
    """Return the image in ``path`` decoded, EXIF-oriented, as RGB or RGBA.

    With ``at_least``, a JPEG may be decoded at a reduced scale that still covers that size on
    both sides (much faster for camera photos shown on a small box).

    Raises AssetError: asset.image_too_large when its header declares more than ``max_pixels``
    (checked before decoding, so a decompression bomb costs nothing), asset.image_broken when
    it is not a readable image or is truncated, asset.unreadable when the file cannot be read.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                width, height = opened.size
                if width * height > max_pixels:
                    raise AssetError(
                        ErrorCode.ASSET_IMAGE_TOO_LARGE,
                        f"image is {width}x{height} pixels, more than the limit of {max_pixels}",
                        path=path.name,
                    )
                if opened.format == "JPEG" and at_least is not None:
                    want = (at_least.width, at_least.height)
                    if opened.getexif().get(_ORIENTATION, 1) in (5, 6, 7, 8):
                        want = (at_least.height, at_least.width)  # stored sideways
                    opened.draft("RGB", want)
                opened.load()
                image = ImageOps.exif_transpose(opened)
    except AssetError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AssetError(
            ErrorCode.ASSET_IMAGE_TOO_LARGE,
            f"image declares more pixels than the limit of {max_pixels} ({exc})",
            path=path.name,
        ) from exc
    except FileNotFoundError as exc:
        raise AssetError(ErrorCode.ASSET_MISSING, "asset file not found", path=path.name) from exc
    except PermissionError as exc:
        raise AssetError(ErrorCode.ASSET_UNREADABLE, str(exc), path=path.name) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise AssetError(
            ErrorCode.ASSET_IMAGE_BROKEN, f"not a readable image: {exc}", path=path.name
        ) from exc
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert(
            "RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB"
        )
    return image


def fit_image(image: Image.Image, box: Size, fit: Fit) -> Image.Image:
    """Return ``image`` scaled for a ``box``: whole inside it (contain), filling and cropped
    (cover), or stretched to it. Downscaling uses a reducing gap for speed and Lanczos for quality.
    """
    width, height = image.size
    if fit == "stretch":
        target = (box.width, box.height)
        return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    scale_w, scale_h = box.width / width, box.height / height
    scale = max(scale_w, scale_h) if fit == "cover" else min(scale_w, scale_h)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    scaled = image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if fit == "cover":
        left = (target[0] - box.width) // 2
        top = (target[1] - box.height) // 2
        scaled = scaled.crop((left, top, left + box.width, top + box.height))
    return scaled


def placeholder(box: Size) -> Image.Image:
    """Return a neutral grey panel with a simple picture mark, shown where an image failed."""
    image = Image.new("RGB", (max(1, box.width), max(1, box.height)), (72, 76, 82))
    draw = ImageDraw.Draw(image)
    side = min(box.width, box.height) // 3
    if side >= 12:
        cx, cy = box.width // 2, box.height // 2
        frame = (cx - side, cy - side * 3 // 4, cx + side, cy + side * 3 // 4)
        line = max(1, side // 12)
        draw.rectangle(frame, outline=(150, 155, 162), width=line)
        draw.polygon(
            [
                (frame[0] + line, frame[3] - line),
                (cx - side // 4, cy),
                (cx + side // 3, frame[3] - line),
            ],
            fill=(150, 155, 162),
        )
        r = side // 6
        draw.ellipse(
            (cx + side // 3 - r, cy - side // 3 - r, cx + side // 3 + r, cy - side // 3 + r),
            fill=(150, 155, 162),
        )
    return image
