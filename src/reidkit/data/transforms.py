"""Image transforms from config (fast-reid's INPUT.* keys).

Images become float tensors on the 0-255 scale (the model normalises them itself). Every random
choice draws from a ``torch.Generator`` passed in, so that a sample's augmentation depends only on
its seed: a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

Transform = Callable[[Image.Image, torch.Generator], torch.Tensor]


def _uniform(gen: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * torch.rand((), generator=gen).item()


def to_tensor_255(img: Image.Image) -> torch.Tensor:
    """HWC uint8 RGB -> CHW float32 on the 0-255 scale."""
    return torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32).copy()).permute(2, 0, 1)


def downscale(img: Image.Image, scale: float) -> Image.Image:
    """``img`` as a camera ``scale`` times its resolution would see it: shrunk with antialiasing,
    then enlarged back to its size (bicubic, as test images are)."""
    w, h = img.size
    small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    return small.resize((w, h), Image.Resampling.BICUBIC)


def random_erase(x: torch.Tensor, gen: torch.Generator, value, scale=(0.02, 0.4), ratio=(0.3, 3.33)) -> torch.Tensor:
    """Random erasing (Zhong et al. 2020): one rectangle filled with ``value`` (per channel)."""
    _, h, w = x.shape
    area = h * w
    for _ in range(10):
        target = area * _uniform(gen, *scale)
        aspect = math.exp(_uniform(gen, math.log(ratio[0]), math.log(ratio[1])))
        eh, ew = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < eh < h and 0 < ew < w:
            top = int(torch.randint(0, h - eh + 1, (), generator=gen))
            left = int(torch.randint(0, w - ew + 1, (), generator=gen))
            x = x.clone()
            x[:, top:top + eh, left:left + ew] = torch.tensor(value, dtype=x.dtype)[:, None, None]
            return x
    return x


def build_transform(cfg, is_train: bool) -> Transform:
    """The train or test transform that ``cfg.INPUT`` describes."""
    inp = cfg.INPUT
    size = tuple(inp.SIZE_TRAIN if is_train else inp.SIZE_TEST)
    if len(size) != 2:
        raise ValueError(f"INPUT.SIZE_{'TRAIN' if is_train else 'TEST'} must be [height, width], got {list(size)}")

    pad_mode = inp.PADDING.MODE
    if is_train and inp.PADDING.ENABLED and pad_mode not in ("constant", "reflect", "edge"):
        raise ValueError(f"INPUT.PADDING.MODE must be constant, reflect or edge, got {pad_mode!r}")

    def apply(img: Image.Image, gen: torch.Generator) -> torch.Tensor:
        img = img.convert("RGB")
        img = TF.resize(img, list(size), interpolation=InterpolationMode.BICUBIC)
        if not is_train:
            return to_tensor_255(img)
        if inp.AUTOAUG.ENABLED and _uniform(gen) < inp.AUTOAUG.PROB:
            from torchvision.transforms import AutoAugment

            torch_state = torch.get_rng_state()
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=gen)))
            img = AutoAugment()(img)
            torch.set_rng_state(torch_state)
        if inp.DOWNSCALE.ENABLED and _uniform(gen) < inp.DOWNSCALE.PROB:
            img = downscale(img, _uniform(gen, inp.DOWNSCALE.MIN_SCALE, 1.0))
        if inp.FLIP.ENABLED and _uniform(gen) < inp.FLIP.PROB:
            img = TF.hflip(img)
        if inp.PADDING.ENABLED:
            pad = inp.PADDING.SIZE
            img = TF.pad(img, [pad], padding_mode=pad_mode)
            top = int(torch.randint(0, 2 * pad + 1, (), generator=gen))
            left = int(torch.randint(0, 2 * pad + 1, (), generator=gen))
            img = TF.crop(img, top, left, size[0], size[1])
        if inp.CJ.ENABLED and _uniform(gen) < inp.CJ.PROB:
            img = TF.adjust_brightness(img, _uniform(gen, 1 - inp.CJ.BRIGHTNESS, 1 + inp.CJ.BRIGHTNESS))
            img = TF.adjust_contrast(img, _uniform(gen, 1 - inp.CJ.CONTRAST, 1 + inp.CJ.CONTRAST))
            img = TF.adjust_saturation(img, _uniform(gen, 1 - inp.CJ.SATURATION, 1 + inp.CJ.SATURATION))
            img = TF.adjust_hue(img, _uniform(gen, -inp.CJ.HUE, inp.CJ.HUE))
        if inp.GRAYSCALE.ENABLED and _uniform(gen) < inp.GRAYSCALE.PROB:
            img = TF.to_grayscale(img, num_output_channels=3)
        x = to_tensor_255(img)
        if inp.REA.ENABLED and _uniform(gen) < inp.REA.PROB:
            x = random_erase(x, gen, inp.REA.VALUE)
        return x

    return apply
