"""House numbers rendered from fonts: digits on plates, walls and doors, with their digit boxes.

Real SVHN digits come in a few hundred typefaces we have only a couple of examples of; rendering
every digit in every installed font gives the reader shapes it has never seen in a photo. Fonts
come from the system (Debian: `apt-get install fonts-urw-base35 fonts-freefont-ttf
fonts-roboto-unhinted fonts-open-sans fonts-lato fonts-crosextra-carlito fonts-cantarell
fonts-comic-neue fonts-firacode fonts-hack fonts-noto-core`, see README "Training") and from the
files matplotlib ships (DejaVu, STIX, Computer Modern), so a machine without them still has some.

The picture is grey, as the network sees it. Number lengths follow all 33,402 SVHN train labels
(model/synth.py), and spacing, baseline and width jitter follow the same labels' box statistics:
the gap between neighbouring digits is -0.15 to 0.14 of their height (5th-95th percentile), the
step in top edge -0.19 to 0.12, and a digit box is 0.28 to 0.71 as wide as it is high.
Geometry (rotation, shear, perspective) and camera damage (blur, noise, JPEG) are left to
model/augment.py, which every training source goes through.
"""
from __future__ import annotations

import functools
import hashlib
import string
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from model.data import MAX_DIGITS
from model.surfaces import background
from model.synth import LENGTH_SHARES

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts")
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")
DIGITS = "0123456789"
# Lettering for pictures without a number: the Latin letters, less those that pass for a digit in
# some typeface (O 0, I l 1, S 5, B 8, Z 2, G b 6, g q 9, D Q 0), which a photo may well mean as one.
LETTERS = "".join(c for c in string.ascii_letters if c not in "OoIilSsBZzGgqbDQ")


def font_files(dirs: tuple[str, ...] | list[str] = FONT_DIRS) -> list[Path]:
    """Every font file under the given folders, and those matplotlib ships (usable_fonts weeds out its symbol fonts)."""
    found = []
    for folder in dirs:
        root = Path(folder).expanduser()
        if root.is_dir():
            found += [p for p in root.rglob("*") if p.suffix.lower() in FONT_SUFFIXES]
    try:
        import matplotlib
        found += sorted((Path(matplotlib.get_data_path()) / "fonts" / "ttf").glob("*.ttf"))
    except ImportError:
        pass
    return sorted(set(found))


@functools.lru_cache(maxsize=4096)
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size)


def _glyph(font: ImageFont.FreeTypeFont, text: str) -> np.ndarray:
    image = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(image).text((8, 8), text, font=font, fill=255)
    return np.asarray(image)


def _shape(glyph: np.ndarray) -> np.ndarray:
    """A glyph's ink scaled to 16x24, zero mean, unit norm: comparable across fonts by a dot product."""
    image = Image.fromarray(glyph)
    bounds = image.getbbox()
    if bounds is None:
        return np.zeros(16 * 24, np.float32)
    pixels = np.asarray(image.crop(bounds).resize((16, 24), Image.Resampling.BILINEAR), np.float32).ravel()
    pixels -= pixels.mean()
    return pixels / max(float(np.linalg.norm(pixels)), 1e-6)


def usable_fonts(paths: list[Path], reference: Path | None = None) -> list[Path]:
    """The fonts that draw the ten Latin digits, one per look-alike family.

    Many files map digits to nothing or to the "missing glyph" box (fonts of other scripts),
    or to pictures (dingbats), which would teach the reader wrong labels; a font is kept when
    at least 8 of its digits look most like the same digit of a plain reference font (a 1 may
    be a bare bar, a 4 open or closed). Dozens of Noto files share the same Latin digits, which
    would weight one design dozens of times, so one file per distinct set of glyphs is kept.
    """
    reference = reference or next((p for p in paths if p.name == "DejaVuSans.ttf"), None)
    template = np.stack([_shape(_glyph(_font(reference, 32), d)) for d in DIGITS]) if reference else None
    kept, seen = [], set()
    for path in paths:
        try:
            font = _font(path, 32)
        except OSError:
            continue
        glyphs = [_glyph(font, d) for d in DIGITS]
        missing = _glyph(font, "\ue000")  # a private-use code point: the font's "missing glyph" box
        raw = [g.tobytes() for g in glyphs]
        if len(set(raw)) < 10 or missing.tobytes() in raw or not all(g.any() for g in glyphs):
            continue
        if template is not None:
            nearest = (np.stack([_shape(g) for g in glyphs]) @ template.T).argmax(axis=1)
            if (nearest == np.arange(10)).sum() < 8:
                continue
        look = hashlib.sha1(b"".join(raw)).hexdigest()
        if look not in seen:
            seen.add(look)
            kept.append(path)
    return kept


def digit_mask(path: Path, digit: int | str, height: int, stroke: int = 0) -> Image.Image:
    """The ink of one digit (or letter), cropped to its bounds and scaled to `height` pixels high."""
    size = 2 * height  # render large, then scale: glyph heights differ from font sizes by font
    font = _font(path, size)
    image = Image.new("L", (3 * size, 3 * size), 0)
    ImageDraw.Draw(image).text((size // 2, size // 2), str(digit), font=font, fill=255,
                               stroke_width=stroke * size // 40, stroke_fill=255)
    image = image.crop(image.getbbox())
    return image.resize((max(2, round(image.width * height / image.height)), height), Image.Resampling.LANCZOS)


def lighting(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A light falling off across the picture, as from a porch lamp or the sun on a wall."""
    w, h = image.size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (xs * np.cos(angle) + ys * np.sin(angle)) / max(w, h)
    gain = 1 + rng.uniform(0.2, 0.7) * (ramp - ramp.mean())
    return Image.fromarray(np.clip(np.asarray(image, np.float32) * gain, 0, 255).astype(np.uint8), "L")


class FontNumbers:
    """Draws numbers rendered from fonts on plates or walls: compose(rng) -> (grey image, digits, digit boxes)."""

    def __init__(self, fonts: list[Path], walls: list[Image.Image] | None = None):
        if not fonts:
            raise ValueError("no usable font: install some (README, Training) or pass --font-fraction 0")
        self.fonts, self.walls = fonts, walls or []

    def compose(self, rng: np.random.Generator, length: int | None = None):
        length = length or int(rng.choice(np.arange(1, MAX_DIGITS + 1), p=LENGTH_SHARES / LENGTH_SHARES.sum()))
        digits = tuple(int(d) for d in rng.integers(0, 10, length))
        canvas, boxes = self._sign(rng, [str(d) for d in digits])
        return canvas, digits, boxes

    def lettering(self, rng: np.random.Generator) -> Image.Image:
        """A word of 2 to 8 letters (no digit) made like a number: a sign that is not a house number."""
        letters = [LETTERS[int(i)] for i in rng.integers(0, len(LETTERS), int(rng.integers(2, 9)))]
        return self._sign(rng, letters)[0]

    def _sign(self, rng: np.random.Generator, characters: list[str]) -> tuple[Image.Image, list[tuple]]:
        """The characters in one font on a plate or a wall -> (grey image, one box per character)."""
        length = len(characters)
        font = self.fonts[int(rng.integers(len(self.fonts)))]
        height = int(rng.integers(20, 72))
        stroke = int(rng.integers(0, 3)) if rng.random() < 0.3 else 0  # bolder than the font
        stretch = rng.uniform(0.75, 1.3)  # condensed and extended cuts of the same design
        masks = []
        for c in characters:
            mask = digit_mask(font, c, height, stroke)
            masks.append(mask.resize((max(2, round(mask.width * stretch)), height), Image.Resampling.BILINEAR))
        gap = rng.uniform(-0.05, 0.25) * height
        steps = rng.uniform(-0.06, 0.06, length) * height if rng.random() < 0.3 else np.zeros(length)
        total = sum(m.width for m in masks) + gap * (length - 1)

        # The plate: a panel around the digits, or none (digits straight on a wall or a door).
        pad_x, pad_y = rng.uniform(0.15, 0.7) * height, rng.uniform(0.1, 0.5) * height
        plate_w, plate_h = int(total + 2 * pad_x), int(height * (1 + np.ptp(steps) / height) + 2 * pad_y)
        canvas = background(rng, (int(plate_w * rng.uniform(1.2, 2.2)) + 4, int(plate_h * rng.uniform(1.3, 2.4)) + 4), self.walls)
        px, py = int(rng.uniform(0.2, 0.8) * (canvas.width - plate_w)), int(rng.uniform(0.2, 0.8) * (canvas.height - plate_h))
        plate_grey = int(rng.integers(0, 256))
        if rng.random() < 0.7:
            self._plate(canvas, (px, py, px + plate_w, py + plate_h), plate_grey, rng)
        else:
            plate_grey = int(np.asarray(canvas.crop((px, py, px + plate_w, py + plate_h))).mean())

        # Ink far from the plate most of the time; low-contrast numbers exist too (brass on stone).
        contrast = rng.uniform(60, 200) if rng.random() < 0.85 else rng.uniform(25, 60)
        ink = int(np.clip(plate_grey - contrast if plate_grey > 127 else plate_grey + contrast, 0, 255))
        x, boxes = px + pad_x, []
        for mask, step in zip(masks, steps):
            box = (int(x), int(py + pad_y + step - steps.min()), mask.width, mask.height)
            self._digit(canvas, mask, box, ink, plate_grey, rng)
            boxes.append(box)
            x += mask.width + gap
        return (lighting(canvas, rng) if rng.random() < 0.5 else canvas), boxes

    @staticmethod
    def _plate(canvas: Image.Image, rect: tuple[int, int, int, int], grey: int, rng: np.random.Generator) -> None:
        """A panel with maybe a shadow on the wall, rounded corners, a border and a bevel."""
        draw = ImageDraw.Draw(canvas)
        radius = int(rng.uniform(0, 0.3) * (rect[3] - rect[1])) if rng.random() < 0.5 else 0
        if rng.random() < 0.4:
            dx, dy = rng.integers(-4, 5, 2)
            shadow = Image.new("L", canvas.size, 0)
            ImageDraw.Draw(shadow).rounded_rectangle((rect[0] + dx, rect[1] + dy, rect[2] + dx, rect[3] + dy), radius, fill=150)
            canvas.paste(0, (0, 0), shadow.filter(ImageFilter.GaussianBlur(2)))
        border = int(rng.integers(1, 4)) if rng.random() < 0.4 else 0
        draw.rounded_rectangle(rect, radius, fill=grey, outline=int(rng.integers(0, 256)) if border else None, width=border)
        if rng.random() < 0.3:  # a bevel: a lit top-left edge and a shaded bottom-right one
            lit, shade = min(255, grey + 60), max(0, grey - 60)
            draw.line((rect[0], rect[3], rect[0], rect[1], rect[2], rect[1]), fill=lit, width=2)
            draw.line((rect[0], rect[3], rect[2], rect[3], rect[2], rect[1]), fill=shade, width=2)

    @staticmethod
    def _digit(canvas: Image.Image, mask: Image.Image, box, ink: int, plate: int, rng: np.random.Generator) -> None:
        """Paint one digit, maybe with a cast shadow, an outline or a raised (embossed) edge."""
        spot = box[:2]
        effect = rng.random()
        if effect < 0.25:  # raised metal numbers cast a shadow on the plate
            offset = tuple(int(v) for v in rng.integers(1, max(2, box[3] // 12) + 1, 2))
            canvas.paste(max(0, min(plate, ink) - 40), (spot[0] + offset[0], spot[1] + offset[1]),
                         mask.filter(ImageFilter.GaussianBlur(1)))
        elif effect < 0.4:  # an outline in a third tone
            canvas.paste(int(rng.integers(0, 256)), spot, mask.filter(ImageFilter.MaxFilter(3)))
        elif effect < 0.5:  # an emboss: a lit edge up and left of the digit
            canvas.paste(min(255, max(plate, ink) + 50), (spot[0] - 1, spot[1] - 1), mask)
        canvas.paste(ink, spot, mask)
        if rng.random() < 0.2:  # worn or dirty paint: the plate shows through the ink in places
            holes = Image.fromarray((rng.random((mask.height, mask.width)) < 0.15).astype(np.uint8) * 255, "L")
            worn = ImageChops.multiply(mask, holes.filter(ImageFilter.BoxBlur(1)))
            canvas.paste(plate, spot, worn)
