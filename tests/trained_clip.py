"""A tiny CLIP briefly trained to tell four simple pictures apart.

Random weights check that numbers are computed right; they cannot check that the
right phrase wins.  This model learns, in a few seconds on a CPU, to match four
synthetic pictures (a red circle, a blue square, green stripes, a yellow triangle) with
their captions, so end-to-end tests can assert a correct top-1 through the real
loading path (``CLIPModel.from_pretrained``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from tiny_clip import save_tiny_hf_clip

CAPTIONS = ["a red circle", "a blue square", "green stripes", "a yellow triangle"]


def picture(kind: int, seed: int = 0, size: int = 96) -> Image.Image:
    """One of the four pictures, with a little jitter in position, size and background."""
    rng = np.random.default_rng(seed)
    grey = int(rng.integers(170, 255))
    image = Image.new("RGB", (size, size), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    r = int(size * rng.uniform(0.25, 0.4))
    cx, cy = (int(size / 2 + rng.integers(-size // 10, size // 10 + 1)) for _ in range(2))
    if kind == 0:
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(220, 30, 30))
    elif kind == 1:
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=(30, 60, 220))
    elif kind == 2:
        step = int(rng.integers(8, 14))
        for x in range(0, size, 2 * step):
            draw.rectangle((x, 0, x + step, size), fill=(30, 180, 40))
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=(235, 210, 20))
    return image


def save_trained_clip(folder: Path, steps: int = 60, seed: int = 0) -> Path:
    from transformers import CLIPModel, CLIPProcessor

    save_tiny_hf_clip(folder, seed=seed)
    model = CLIPModel.from_pretrained(folder)
    processor = CLIPProcessor.from_pretrained(folder)
    torch.manual_seed(seed)
    text = processor(text=CAPTIONS, return_tensors="pt", padding=True)
    # The 49408-row token table is left as it is (random words stay distinct): training
    # the rest is enough and keeps each step cheap.
    model.text_model.embeddings.token_embedding.weight.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=3e-3)
    labels = torch.arange(len(CAPTIONS))
    # A pool of jittered pictures, preprocessed once; each step draws one of each kind.
    pool = [
        processor(images=[picture(k, seed=100 * k + i) for i in range(16)], return_tensors="pt")[
            "pixel_values"
        ]
        for k in range(len(CAPTIONS))
    ]
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        pick = torch.randint(0, 16, (len(CAPTIONS),), generator=generator)
        pixels = torch.stack([pool[k][int(i)] for k, i in enumerate(pick)])
        out = model(pixel_values=pixels, **text)
        loss = (
            torch.nn.functional.cross_entropy(out.logits_per_image, labels)
            + torch.nn.functional.cross_entropy(out.logits_per_text, labels)
        ) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(folder)
    return folder


#: Quality tags the tests' prompts mix in (never drawn): calibration needs ten phrases.
QUALITY = [
    "masterpiece", "best quality", "highly detailed", "sharp focus", "soft lighting",
    "trending on artstation", "8k", "studio photo", "vivid colours", "clean background",
]  # fmt: skip


def shapes_folder(folder, count: int, seed: int, picture_seed: int, size: int = 96, save=None):
    """``count`` pictures with prompts, as a folder of generated pictures: the drawn shape,
    sometimes one or two shapes not drawn, sometimes a quality tag; ``save(path, image,
    prompt)`` writes each (default: a PNG with the prompt in its ``parameters`` chunk).
    Returns ``{path: the kind of shape drawn}``."""
    from pathlib import Path

    from PIL import PngImagePlugin

    def png(path, image, prompt):
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", f"{prompt}\nSteps: 2, Sampler: Euler, Seed: 1, Size: 64x64")
        image.save(path, pnginfo=info)
        return path

    save = save or png
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    kinds = {}
    for n in range(count):
        kind = n % 4
        absent = [k for k in range(4) if k != kind]
        asked = [kind, *rng.choice(absent, size=rng.integers(0, 3), replace=False)]
        phrases = [CAPTIONS[k] for k in asked]
        phrases += list(rng.choice(QUALITY, size=rng.integers(0, 2), replace=False))
        rng.shuffle(phrases)
        image = picture(kind, seed=picture_seed + n, size=size)
        path = save(folder / f"{n:05}.png", image, ", ".join(phrases))
        kinds[str(path)] = kind
    return kinds
