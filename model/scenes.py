"""Pictures for the localiser, each a grey image with the boxes of the house numbers in it.

Training draws from five kinds (`Pictures`): real photos cropped anywhere from tight to whole;
numbers recombined from real digit crops (model/synth.py); canvas drawings of MNIST train
digits; scenes, where one of those is pasted at a random spot of a larger background among
pasted patches without digits (so a pasted rectangle's edge does not mean "number"); and
negatives with no number at all (walls beside the digits of training photos, plain textures,
blank sheets, and, with `Lettering`, signs of letters). `scene_of` and `negatives_of` build the
benchmark pictures of model/evaluate.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from model.data import Sample
from model.preprocess import Box, union_box
from model.surfaces import background, texture
from model.synth import DigitBank, feathered_mask, walls_of

KINDS = ("photo", "synthetic", "drawing", "scene", "negative")
SHARES = (0.3, 0.1, 0.1, 0.3, 0.2)


@dataclass(frozen=True)
class Lettering:
    """Signs of letters (model/render.py: FontNumbers.lettering), shown to the localiser as things
    that are not numbers: this share of the negatives, and of the patches laid into scenes."""
    draw: Callable[[np.random.Generator], Image.Image]
    share: float


def paste_patches(canvas: Image.Image, rng: np.random.Generator, walls: list[Image.Image], count: int,
                  typical: tuple[int, int], lettering: Lettering | None = None) -> None:
    """Lay `count` digit-free patches about `typical` in size at random spots of the canvas; with
    `lettering`, each is a sign of letters with its probability."""
    for _ in range(count):
        size = tuple(max(4, min(int(s * rng.uniform(0.3, 1.3)), c)) for s, c in zip(typical, canvas.size))
        if lettering and rng.random() < lettering.share:
            patch = lettering.draw(rng)
            scale = min(size[1] / patch.height, canvas.width / patch.width, canvas.height / patch.height)
            size = (max(4, int(patch.width * scale)), max(4, int(patch.height * scale)))  # a word keeps its shape
            patch = patch.resize(size, Image.Resampling.BILINEAR)
        else:
            patch = background(rng, size, walls)
        spot = (int(rng.integers(0, canvas.width - size[0] + 1)), int(rng.integers(0, canvas.height - size[1] + 1)))
        canvas.paste(patch, spot, feathered_mask(size) if rng.random() < 0.5 else None)


def scene_of(content: Image.Image, boxes: list[Box], rng: np.random.Generator, walls: list[Image.Image],
             factor: float = 3.0, patches: int = 0, feather: bool = False,
             lettering: Lettering | None = None) -> tuple[Image.Image, list[Box]]:
    """`content` pasted at a random spot of a background `factor` times its width and height."""
    size = (max(content.width + 1, int(content.width * factor)), max(content.height + 1, int(content.height * factor)))
    # In the content's mode: a texture is grey, and pasting a colour photo onto it made the whole scene grey.
    canvas = background(rng, size, walls).convert(content.mode)
    paste_patches(canvas, rng, walls, patches, content.size, lettering)
    x, y = int(rng.integers(0, size[0] - content.width + 1)), int(rng.integers(0, size[1] - content.height + 1))
    canvas.paste(content, (x, y), feathered_mask(content.size) if feather else None)
    return canvas, [(bx + x, by + y, bw, bh) for bx, by, bw, bh in boxes]


def negatives_of(samples: list[Sample], images: dict, rng: np.random.Generator, count: int | None = None) -> list[Image.Image]:
    """Pictures without digits: half regions of the photos away from any digit box, half plain textures.

    Each wall is used once before any is used again: a wall drawn twice would count its false
    alarm twice. With no count, every wall of the photos once and as many textures.
    """
    walls = [wall for s in samples for wall in walls_of(s, images[s.path], min_size=24)]
    count = 2 * len(walls) if count is None else count
    wall_slots = (count + 1) // 2  # the even places
    rounds = -(-wall_slots // len(walls)) if walls else 0  # ceiling division
    order = [i for _ in range(rounds) for i in rng.permutation(len(walls))]
    pictures = []
    for i in range(count):
        if i % 2 == 0 and walls:
            pictures.append(walls[order[i // 2]])
        else:
            pictures.append(texture(rng, (int(rng.integers(40, 400)), int(rng.integers(40, 300)))))
    return pictures


class Pictures:
    """Draws training pictures for the localiser: (grey image, number boxes), no box for a negative."""

    def __init__(self, samples: list[Sample], images: dict, handwriting=None, shares=SHARES,
                 lettering: Lettering | None = None, small_scenes: float = 0.0, unlabelled=None, unlabelled_share: float = 0.0):
        self.samples, self.images, self.lettering, self.small_scenes = samples, images, lettering, small_scenes
        # model/pseudo.py's draw of an unlabelled photo: (grey image, digits, the number's box in it).
        self.unlabelled, self.unlabelled_share = unlabelled, unlabelled_share if unlabelled else 0.0
        self.bank = DigitBank(samples, images)
        self.walls = [wall for wall in self.bank.backgrounds if min(wall.size) >= 12]
        self.handwriting = handwriting
        shares = np.array(shares, dtype=np.float64)
        if handwriting is None:
            shares[KINDS.index("drawing")] = 0
        self.shares = shares / shares.sum()

    def draw(self, rng: np.random.Generator) -> tuple[Image.Image, list[Box]]:
        return getattr(self, KINDS[int(rng.choice(len(KINDS), p=self.shares))])(rng)

    def photo(self, rng):
        """A real photo cut anywhere between a tight crop around the number and the whole photo."""
        sample = self.samples[int(rng.integers(len(self.samples)))]
        image = self.images[sample.path]
        left, top, width, height = union_box(list(sample.boxes))
        if rng.random() < 0.3:  # as a visitor crops: a margin around the number
            margins = rng.uniform(0.05, 0.6, 4) * (width, height, width, height)
            region = (left - margins[0], top - margins[1], left + width + margins[2], top + height + margins[3])
        else:
            region = (rng.uniform(0, max(left, 0)), rng.uniform(0, max(top, 0)),
                      rng.uniform(min(left + width, image.width), image.width), rng.uniform(min(top + height, image.height), image.height))
        region = tuple(int(v) for v in (max(region[0], 0), max(region[1], 0), min(region[2], image.width), min(region[3], image.height)))
        if region[2] - region[0] < 4 or region[3] - region[1] < 4:
            region = (0, 0, image.width, image.height)
        return image.crop(region), [(left - region[0], top - region[1], width, height)]

    def synthetic(self, rng):
        image, _, boxes = self.bank.compose(rng)
        return image, [union_box(boxes)]

    def drawing(self, rng):
        """A canvas drawing; half of them small on a larger sheet, as a visitor may draw in a corner."""
        sheet, _, boxes = self.handwriting.compose(rng)
        if rng.random() < 0.5:
            return sheet, [union_box(boxes)]
        colour = int(np.asarray(sheet)[0, 0])
        size = (int(sheet.width * rng.uniform(1.2, 3)), int(sheet.height * rng.uniform(1.2, 3)))
        big = Image.new("L", size, colour)
        x, y = int(rng.integers(0, size[0] - sheet.width + 1)), int(rng.integers(0, size[1] - sheet.height + 1))
        big.paste(sheet, (x, y))
        left, top, width, height = union_box(boxes)
        return big, [(left + x, top + y, width, height)]

    def scene(self, rng):
        if rng.random() < self.unlabelled_share:  # the looks of many more real numbers than the labelled photos have
            content, _, box = self.unlabelled(rng)
            boxes = [box]
        else:
            content, boxes = self.photo(rng) if rng.random() < 0.75 else self.synthetic(rng)
        if self.small_scenes and rng.random() < self.small_scenes:  # a number far off, as across a street
            factor = float(np.exp(rng.uniform(np.log(4.0), np.log(12.0))))
        else:
            factor = rng.uniform(1.3, 4.0)
        return scene_of(content, boxes, rng, self.walls, factor=factor,
                        patches=int(rng.integers(0, 4)), feather=rng.random() < 0.5, lettering=self.lettering)

    def negative(self, rng):
        if self.lettering and rng.random() < self.lettering.share:
            return self.lettering.draw(rng), []
        kind = rng.random()
        if kind < 0.45:
            wall = self.walls[int(rng.integers(len(self.walls)))]
            return wall, []
        size = (int(rng.integers(32, 600)), int(rng.integers(32, 500)))
        if kind < 0.6:  # a blank or nearly blank canvas
            return Image.new("L", size, int(rng.integers(200, 256))), []
        canvas = background(rng, size, self.walls)
        paste_patches(canvas, rng, self.walls, int(rng.integers(0, 4)), (size[0] // 3, size[1] // 3), self.lettering)
        return canvas, []
