"""A synthetic polyp data set in the CVC-912 layout, generated in seconds with NumPy and Pillow.

The frames imitate colonoscopy: pinkish-red mucosa with folds and a fine texture, branching blood
vessels, a dark lumen, uneven lighting, specular highlights, and the black border outside the
endoscope's round view, which the masks mark as void (2), as CVC-912's ``masks2`` do. Each frame
shows one or two polyps: irregular blobs of varied size, shaded like a dome lit from one side, with a
finer surface texture and no vessels. Their colour is drawn from the same range as the mucosa's,
so a model must learn shape, shading and texture; colour alone does not separate the classes.

Everything is seeded: the same ``seed`` gives the same files, and frame ``i`` of a split depends
only on ``(seed, split, i)``.
"""

from __future__ import annotations

import numbers
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm.auto import tqdm

from .decode import MAX_PIXELS_ENV, max_pixels

__all__ = ["make_synthetic_polyps", "render_frame"]

_SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}


def make_synthetic_polyps(
    root: str | os.PathLike,
    n_train: int = 80,
    n_valid: int = 20,
    n_test: int = 20,
    *,
    size: tuple[int, int] = (288, 384),
    seed: int = 0,
    progress: bool | None = None,
) -> Path:
    """Write a synthetic polyp set to ``root`` in the CVC-912 layout and return ``root``.

    Layout: ``root/{train,valid,test}/images/<name>.bmp`` (RGB) and ``.../masks2/<name>.tif`` with
    0 background, 1 polyp, 2 void, so that :class:`~fcn_tutorial.data.Polyps912` reads it.
    ``size`` is (height, width). The set is written to a temporary folder renamed to ``root`` when
    complete: an interrupted run leaves nothing half-written. ``root`` must not exist yet (or be empty).
    """
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ValueError(f"{root} already exists and is not empty; choose a new folder for the synthetic set")
    height, width = size
    if height < 32 or width < 32:
        raise ValueError(f"synthetic frames need at least 32x32 pixels, not {width}x{height}")
    if height * width > max_pixels():  # the limit that every frame read must pass
        raise ValueError(
            f"synthetic frames of {width}x{height} pixels are more than the limit of {max_pixels():,} "
            f"pixels ({MAX_PIXELS_ENV})"
        )
    counts = {"train": n_train, "valid": n_valid, "test": n_test}
    for split, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 0:
            raise ValueError(f"the number of {split} frames must be a whole number >= 0, not {count!r}")
    if not sum(counts.values()):
        raise ValueError("a synthetic set needs at least one frame")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"the seed must be a whole number >= 0, not {seed!r}")
    root.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.", suffix=".part"))
    try:
        with tqdm(
            total=sum(counts.values()),
            desc="synthetic polyps",
            unit="frame",
            disable=None if progress is None else not progress,
        ) as bar:
            for split, count in counts.items():
                (temporary / split / "images").mkdir(parents=True)
                (temporary / split / "masks2").mkdir(parents=True)
                for index in range(count):
                    rng = np.random.default_rng([seed, _SPLIT_CODES[split], index])
                    image, mask = render_frame(rng, size)
                    name = f"synthetic-{split}_{index:03d}"
                    Image.fromarray(image).save(temporary / split / "images" / f"{name}.bmp")
                    Image.fromarray(mask).save(temporary / split / "masks2" / f"{name}.tif")
                    bar.update()
        if root.exists():
            root.rmdir()
        os.replace(temporary, root)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return root


def render_frame(rng: np.random.Generator, size: tuple[int, int] = (288, 384)) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic frame: an ``H x W x 3`` uint8 image and its ``H x W`` uint8 mask (0, 1, 2 = void)."""
    height, width = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = min(height, width)
    u, v = (x - width / 2) / (width / 2), (y - height / 2) / (height / 2)  # -1 .. 1 across the frame

    # The endoscope's view: a rounded rectangle (superellipse); outside it is void.
    power = rng.uniform(3.0, 8.0)
    reach = rng.uniform(0.92, 1.08, size=2)
    view_distance = np.abs(u / reach[0]) ** power + np.abs(v / reach[1]) ** power
    view = view_distance < 1.0

    # Mucosa: a base colour with lighting, folds and texture at several scales.
    mucosa_colour = np.array([rng.uniform(0.70, 0.90), rng.uniform(0.32, 0.50), rng.uniform(0.26, 0.40)], np.float32)
    angle = rng.uniform(0, np.pi)
    along = (x * np.cos(angle) + y * np.sin(angle)) / scale
    folds = np.sin(2 * np.pi * (rng.uniform(2.0, 4.5) * along + 0.4 * _noise(rng, size, 60)))
    shade = 1.0 + 0.08 * folds + 0.08 * _noise(rng, size, 40) + 0.03 * _noise(rng, size, 6)
    colour_drift = 1.0 + 0.06 * np.stack([_noise(rng, size, 80) for _ in range(3)], axis=-1)
    image = mucosa_colour * colour_drift * shade[..., None]

    # Blood vessels: thin dark branching curves, drawn under the polyps.
    vessels = _vessels(rng, size)
    image *= 1.0 - vessels[..., None] * np.array([0.25, 0.55, 0.45], np.float32)

    # Polyps: one or two irregular, shaded blobs, coloured like the mucosa (give or take).
    polyp = np.zeros(size, bool)
    light = rng.uniform(0, 2 * np.pi)
    light_direction = np.array([np.cos(light), np.sin(light)], np.float32)
    highlight_spots = []
    for _ in range(1 if rng.random() < 0.8 else 2):
        inside, height_map, rim, centre, radius = _blob(rng, size, x, y, light_direction)
        tint = mucosa_colour * rng.uniform(0.9, 1.12) * rng.uniform(0.94, 1.06, size=3).astype(np.float32)
        surface = 1.0 + 0.05 * _noise(rng, size, 3) + 0.04 * _noise(rng, size, 12)
        lit = _lambert(height_map, radius, light_direction)[..., None] * tint * surface[..., None]
        alpha = np.clip(height_map * 6.0, 0, 1)[..., None]  # a soft one-pixel edge
        image = image * (1 - alpha) + lit * alpha
        image *= 1.0 - 0.30 * rim[..., None]  # the shadow on the side away from the light
        polyp |= inside
        top = centre - 0.45 * radius * light_direction
        highlight_spots += [top + rng.normal(0, 0.15 * radius, 2) for _ in range(rng.integers(1, 4))]

    # Lighting: bright near the light, a dark lumen somewhere, dark towards the border.
    lumen_centre = rng.uniform(-0.6, 0.6, 2)
    lumen = np.exp(-((u - lumen_centre[0]) ** 2 + (v - lumen_centre[1]) ** 2) / (2 * rng.uniform(0.12, 0.35) ** 2))
    lumen *= rng.uniform(0.6, 0.95)
    falloff = 1.0 - 0.45 * np.clip(view_distance, 0, 1) ** 1.5
    image *= ((1.0 - lumen) * falloff)[..., None]

    # Specular highlights: small white reflections on the polyps and the wet mucosa.
    highlight_spots += [rng.uniform([0, 0], [width, height]) for _ in range(rng.integers(3, 12))]
    image = np.maximum(image, _highlights(rng, size, highlight_spots)[..., None])

    # Sensor noise, a slight blur, and the black border.
    image += rng.normal(0, 0.012, image.shape).astype(np.float32)
    image = np.clip(image, 0, 1)
    pixels = np.asarray(Image.fromarray((image * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6)))
    border = (rng.uniform(0, 12, size) * (1 - view)).astype(np.uint8)
    pixels = np.where(view[..., None], pixels, border[..., None]).astype(np.uint8)
    mask = np.where(view, polyp.astype(np.uint8), np.uint8(2))
    return pixels, mask


def _noise(rng: np.random.Generator, size: tuple[int, int], cell: float) -> np.ndarray:
    """Smooth random texture with features about ``cell`` pixels wide, values roughly in [-1, 1]."""
    height, width = size
    coarse = rng.standard_normal((max(2, int(height / cell) + 2), max(2, int(width / cell) + 2))).astype(np.float32)
    image = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    return np.clip(np.asarray(image) / 1.5, -1.5, 1.5)


def _vessels(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A layer in [0, 1] with a few winding, branching vessels."""
    height, width = size
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    for _ in range(rng.integers(3, 8)):
        point = rng.uniform([0, 0], [width, height])
        heading = rng.uniform(0, 2 * np.pi)
        thickness = rng.uniform(1.0, 3.0)
        strength = rng.uniform(0.4, 1.0)
        for _ in range(rng.integers(15, 40)):
            heading += rng.normal(0, 0.35)
            step = point + rng.uniform(4, 10) * np.array([np.cos(heading), np.sin(heading)])
            draw.line([tuple(point), tuple(step)], fill=int(255 * strength), width=max(1, int(round(thickness))))
            if rng.random() < 0.08:  # a thinner branch
                branch = step + rng.uniform(15, 40) * np.array([np.cos(heading + 1.0), np.sin(heading + 1.0)])
                draw.line([tuple(step), tuple(branch)], fill=int(180 * strength), width=1)
            point = step
            thickness = max(0.8, thickness * 0.97)
    return np.asarray(layer.filter(ImageFilter.GaussianBlur(0.8)), dtype=np.float32) / 255


def _blob(rng: np.random.Generator, size: tuple[int, int], x: np.ndarray, y: np.ndarray, light: np.ndarray):
    """An irregular polyp: its pixels, a dome height map, a shadow rim, its centre and radius."""
    height, width = size
    scale = min(height, width)
    radius = scale * rng.uniform(0.05, 0.30)
    centre = rng.uniform([0.25 * width, 0.25 * height], [0.75 * width, 0.75 * height]).astype(np.float32)
    stretch, tilt = rng.uniform(0.6, 1.0), rng.uniform(0, np.pi)
    dx, dy = x - centre[0], y - centre[1]
    along = dx * np.cos(tilt) + dy * np.sin(tilt)
    across = (-dx * np.sin(tilt) + dy * np.cos(tilt)) / stretch
    theta = np.arctan2(across, along)
    outline = np.ones_like(theta)
    for k in range(2, 7):  # bumps on the outline
        outline += rng.uniform(0, 0.18 / k * 2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    distance = np.hypot(along, across) / (radius * outline)
    inside = distance < 1.0
    height_map = np.sqrt(np.clip(1.0 - distance**2, 0, 1))
    # The shadow: just outside the outline, on the side facing away from the light.
    away = -(dx * light[0] + dy * light[1]) / (np.hypot(dx, dy) + 1e-6)
    rim = np.clip(1.0 - np.abs(distance - 1.08) / 0.12, 0, 1) * np.clip(away, 0, 1) * (~inside)
    return inside, height_map.astype(np.float32), rim.astype(np.float32), centre, radius


def _lambert(height_map: np.ndarray, radius: float, light: np.ndarray) -> np.ndarray:
    """Brightness of a dome ``radius * height_map`` lit from the side ``light`` (x, y), 45 degrees up."""
    gy, gx = np.gradient(height_map * radius)
    normal = np.stack([-gx, -gy, np.ones_like(gx)])
    normal /= np.linalg.norm(normal, axis=0)
    lamp = np.array([light[0] * 0.7, light[1] * 0.7, 0.7], np.float32)
    return 0.65 + 0.5 * np.clip(np.tensordot(lamp, normal, axes=1), 0, 1)


def _highlights(rng: np.random.Generator, size: tuple[int, int], spots: list[np.ndarray]) -> np.ndarray:
    """A layer of small, soft white reflections at ``spots`` (x, y)."""
    height, width = size
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    for cx, cy in spots:
        rx, ry = rng.uniform(1.0, 5.0), rng.uniform(1.0, 3.5)
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=int(rng.uniform(230, 255)))
    return np.asarray(layer.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32) / 255
