"""Procedurally drawn pedestrians seen by several cameras, written in Market-1501 layout.

Each identity has fixed clothing (colours from a small shared palette, so colour alone does not
identify anyone), a garment pattern, an optional bag, and body proportions. Each camera has its
own colour cast, brightness, blur, background and image scale; each image adds pose, position
jitter, sensor noise and sometimes an occluder. Everything is drawn from one seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..fileio import atomic_write_text

PALETTE = np.array([
    (200, 30, 30), (30, 60, 160), (30, 130, 50), (230, 210, 60), (20, 20, 20), (235, 235, 235),
    (120, 120, 120), (110, 70, 40), (240, 130, 30), (130, 50, 150), (90, 170, 210), (200, 120, 160),
], dtype=np.float32)
SKIN = np.array([(240, 200, 170), (200, 150, 110), (150, 100, 70), (100, 65, 45)], dtype=np.float32)
PATTERNS = ("plain", "hstripes", "vstripes", "checks", "split")
BAGS = ("none", "backpack", "handbag", "shoulder")
CANVAS = (64, 128)  # width, height of the drawing before the camera's scaling


@dataclass(frozen=True)
class Identity:
    top: int
    top2: int
    bottom: int
    shoes: int
    hair: int
    skin: int
    pattern: str
    bag: str
    bag_colour: int
    height: float
    width: float
    leg_ratio: float
    long_hair: bool


@dataclass(frozen=True)
class Camera:
    gain: np.ndarray  # per-channel colour cast
    brightness: float
    blur: float
    background: np.ndarray
    texture: float
    scale: float


def random_identity(rng: np.random.Generator) -> Identity:
    n = len(PALETTE)
    top, top2 = rng.choice(n, 2, replace=False)
    return Identity(
        top=int(top), top2=int(top2), bottom=int(rng.integers(n)), shoes=int(rng.integers(n)),
        hair=int(rng.choice([4, 7, 3, 6])), skin=int(rng.integers(len(SKIN))),
        pattern=str(rng.choice(PATTERNS)), bag=str(rng.choice(BAGS)), bag_colour=int(rng.integers(n)),
        height=float(rng.uniform(0.82, 0.98)), width=float(rng.uniform(0.75, 1.15)),
        leg_ratio=float(rng.uniform(0.42, 0.55)), long_hair=bool(rng.random() < 0.35))


def random_camera(rng: np.random.Generator) -> Camera:
    return Camera(gain=rng.uniform(0.85, 1.15, 3).astype(np.float32), brightness=float(rng.uniform(0.8, 1.15)),
                  blur=float(rng.uniform(0.0, 1.4)), background=rng.uniform(40, 200, 3).astype(np.float32),
                  texture=float(rng.uniform(5, 35)), scale=float(rng.uniform(0.8, 1.6)))


def _garment(draw: ImageDraw.ImageDraw, box, ident: Identity, colours) -> None:
    x0, y0, x1, y1 = box
    c1, c2 = colours
    draw.rectangle(box, fill=c1)
    if ident.pattern == "hstripes":
        for y in range(int(y0), int(y1), 6):
            draw.rectangle((x0, y, x1, min(y + 2, y1)), fill=c2)
    elif ident.pattern == "vstripes":
        for x in range(int(x0), int(x1), 6):
            draw.rectangle((x, y0, min(x + 2, x1), y1), fill=c2)
    elif ident.pattern == "checks":
        for y in range(int(y0), int(y1), 8):
            for x in range(int(x0) + (int(y) // 8 % 2) * 4, int(x1), 8):
                draw.rectangle((x, y, min(x + 3, x1), min(y + 3, y1)), fill=c2)
    elif ident.pattern == "split":
        draw.rectangle((x0, (y0 + y1) / 2, x1, y1), fill=c2)


def draw_person(ident: Identity, cam: Camera, rng: np.random.Generator) -> Image.Image:
    """One crop of ``ident`` as ``cam`` sees it."""
    w, h = CANVAS
    bg = cam.background + rng.normal(0, cam.texture, (h, w, 3)).astype(np.float32)
    bg += np.linspace(-20, 20, h, dtype=np.float32)[:, None, None] * rng.choice([-1, 1])
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    col = lambda i: tuple(int(v) for v in PALETTE[i])  # noqa: E731
    skin = tuple(int(v) for v in SKIN[ident.skin])
    back_view = rng.random() < 0.5
    cx = w / 2 + rng.normal(0, 2.5)
    top_y = h * (1 - ident.height) + rng.normal(0, 2)
    body_h = h - top_y - 2
    head_r = body_h * 0.075
    half_w = w * 0.2 * ident.width
    neck_y = top_y + 2 * head_r
    hip_y = neck_y + body_h * (1 - ident.leg_ratio) - 2 * head_r
    foot_y = h - 2
    # legs with a walking swing
    swing = rng.uniform(-1, 1) * half_w * 0.5
    leg_w = half_w * 0.45
    for side, dx in ((-1, -swing), (1, swing)):
        lx = cx + side * half_w * 0.45
        draw.polygon([(lx - leg_w, hip_y), (lx + leg_w, hip_y), (lx + dx + leg_w * 0.7, foot_y - 6),
                      (lx + dx - leg_w * 0.7, foot_y - 6)], fill=col(ident.bottom))
        draw.rectangle((lx + dx - leg_w, foot_y - 6, lx + dx + leg_w, foot_y), fill=col(ident.shoes))
    # torso and arms
    if ident.bag == "backpack" and back_view:
        _garment(draw, (cx - half_w * 0.8, neck_y + 4, cx + half_w * 0.8, hip_y - 4), ident,
                 (col(ident.bag_colour), col(ident.bag_colour)))
    else:
        _garment(draw, (cx - half_w, neck_y, cx + half_w, hip_y), ident, (col(ident.top), col(ident.top2)))
    arm_swing = rng.uniform(-1, 1) * 4
    for side in (-1, 1):
        ax = cx + side * (half_w + 2)
        draw.line([(ax, neck_y + 2), (ax - side * arm_swing, hip_y + 4)], fill=col(ident.top), width=4)
        draw.ellipse((ax - side * arm_swing - 2, hip_y + 2, ax - side * arm_swing + 2, hip_y + 6), fill=skin)
    if ident.bag == "backpack" and not back_view:
        draw.line([(cx - half_w * 0.6, neck_y), (cx - half_w * 0.6, hip_y - 6)], fill=col(ident.bag_colour), width=2)
        draw.line([(cx + half_w * 0.6, neck_y), (cx + half_w * 0.6, hip_y - 6)], fill=col(ident.bag_colour), width=2)
    elif ident.bag == "handbag":
        bx = cx + half_w + 2
        draw.rectangle((bx - 3, hip_y, bx + 6, hip_y + 10), fill=col(ident.bag_colour))
    elif ident.bag == "shoulder":
        draw.line([(cx - half_w, neck_y), (cx + half_w, hip_y)], fill=col(ident.bag_colour), width=3)
        draw.rectangle((cx + half_w - 4, hip_y - 4, cx + half_w + 6, hip_y + 6), fill=col(ident.bag_colour))
    # head
    draw.ellipse((cx - head_r, top_y, cx + head_r, top_y + 2 * head_r), fill=skin)
    hair = col(ident.hair)
    if back_view:
        draw.ellipse((cx - head_r, top_y, cx + head_r, top_y + 2 * head_r), fill=hair)
    else:
        draw.chord((cx - head_r, top_y, cx + head_r, top_y + 2 * head_r), 180, 360, fill=hair)
    if ident.long_hair:
        draw.rectangle((cx - head_r, top_y + head_r, cx + head_r, neck_y + head_r * 1.5), fill=hair)
    # occluder (a pole, a car, another passer-by's shoulder) in some images
    if rng.random() < 0.25:
        occ = tuple(int(v) for v in rng.uniform(30, 220, 3))
        kind = rng.integers(3)
        if kind == 0:
            x = rng.uniform(0, w)
            draw.rectangle((x, 0, x + rng.uniform(4, 10), h), fill=occ)
        elif kind == 1:
            draw.rectangle((0, h * rng.uniform(0.6, 0.8), w, h), fill=occ)
        else:
            side = rng.choice([0, w])
            draw.ellipse((side - 20, h * 0.3, side + 20, h * 0.9), fill=occ)
    arr = np.asarray(img, dtype=np.float32)
    arr = arr * cam.gain * cam.brightness + rng.normal(0, 6, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if cam.blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(cam.blur))
    s = cam.scale * rng.uniform(0.85, 1.15)
    size = (max(16, int(w * s * rng.uniform(0.9, 1.1))), max(32, int(h * s)))
    return img.resize(size, Image.BILINEAR)


def _save_jpeg(img: Image.Image, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        img.save(f, format="JPEG", quality=90)
    os.replace(tmp, path)


MARKER = ".reidkit-synthetic"


def _claim_output(out: Path) -> None:
    """Use ``out`` only if it is new, empty, or an earlier synthetic dataset (it gets replaced)."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, expected a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ValueError(f"--out {out} is not empty and was not made by 'reid data synth': "
                         "choose a new or empty folder (nothing was written)")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MARKER, "written by reidkit.data.synthetic; the images here are replaced on the next run\n")


def generate(out: str | Path, num_ids: int = 100, num_cameras: int = 4, images_per_camera: int = 3,
             num_distractors: int = 20, seed: int = 0) -> dict[str, int]:
    """Write a synthetic dataset under ``out`` in Market-1501 layout.

    The first half of the identities (ids 1..) go to ``bounding_box_train``; each of the others
    gives one query image in each of two cameras, the rest of its images to
    ``bounding_box_test`` together with ``num_distractors`` id-0 crops of unseen people.
    Returns the number of images written per folder.
    """
    if num_ids < 2 or num_cameras < 2 or images_per_camera < 2:
        raise ValueError(f"need at least 2 identities, 2 cameras and 2 images per camera, got "
                         f"ids={num_ids}, cameras={num_cameras}, images_per_camera={images_per_camera}")
    if num_cameras > 9 or num_ids > 9999 or num_distractors < 0:
        raise ValueError(f"Market-1501 names hold one camera digit and four id digits: at most 9 cameras and "
                         f"9999 identities (and distractors >= 0), got cameras={num_cameras}, ids={num_ids}, "
                         f"distractors={num_distractors}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    from ..fileio import check_output_dir

    out = check_output_dir(out, "--out")
    _claim_output(out)
    folders = {k: out / k for k in ("bounding_box_train", "query", "bounding_box_test")}
    for f in folders.values():
        f.mkdir(parents=True, exist_ok=True)
        for old in f.glob("*.jpg"):
            old.unlink()
    root = np.random.default_rng(seed)
    cameras = [random_camera(root) for _ in range(num_cameras)]
    identities = [random_identity(root) for _ in range(num_ids + num_distractors)]
    num_train = num_ids // 2
    counts = {k: 0 for k in folders}
    frame = 0
    for i, ident in enumerate(identities[:num_ids]):
        pid = i + 1
        rng = np.random.default_rng([seed, pid])
        query_cams = set(rng.choice(num_cameras, 2, replace=False).tolist()) if i >= num_train else set()
        for c, cam in enumerate(cameras):
            for k in range(images_per_camera):
                frame += 1
                if i < num_train:
                    split = "bounding_box_train"
                else:
                    split = "query" if (c in query_cams and k == 0) else "bounding_box_test"
                name = f"{pid:04d}_c{c + 1}s1_{frame:06d}_{k:02d}.jpg"
                _save_jpeg(draw_person(ident, cam, rng), folders[split] / name)
                counts[split] += 1
    for j, ident in enumerate(identities[num_ids:]):
        rng = np.random.default_rng([seed, 10_000 + j])
        c = int(rng.integers(num_cameras))
        frame += 1
        _save_jpeg(draw_person(ident, cameras[c], rng), folders["bounding_box_test"] / f"0000_c{c + 1}s1_{frame:06d}_00.jpg")
        counts["bounding_box_test"] += 1
    return counts
