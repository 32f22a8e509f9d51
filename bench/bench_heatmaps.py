"""Heatmaps: are they right (ground-truth world) and what do they cost (ViT-B/32 size)?

Accuracy, on the synthetic world of ``bench/world`` (objects with known masks) and the
small CLIP trained on it (``world.model``, or a folder given with ``--model``): for every
visible object of every evaluation scene, the phrase's heatmap is scored with
- the pointing game: hit when the hottest patch's centre lies within half a patch of the
  object's pixels (the usual 15 px tolerance at 224 px is about one patch);
- IoU of the map (bilinearly upsampled, thresholded at half its range) with the mask;
per method (Grad-ECLIP, Chefer's CLIP variant) against the phrase-blind baselines
(attention rollout, a centre prior, and a uniformly random point, in expectation).

Cost, on a ViT-B/32-sized random ``CLIPModel(CLIPConfig())`` (see bench_probe.py): maps
for 20 phrases versus one image encode, measured in this one run (text embeddings warm,
as after the analysis; the cold figure adds one batched text encode), and the naive
alternative: one forward and backward through the model per phrase.

    python bench/bench_heatmaps.py [--scenes 300] [--repeat 5] [--model DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import binary_dilation

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from clipprobe_ext.encoders.hf import HFClipEncoder  # noqa: E402
from clipprobe_ext.heatmaps import DEFAULT_METHOD, METHODS, HeatmapRun, phrase_heatmaps  # noqa: E402

# -- accuracy on the world -------------------------------------------------------------------


def world_model_folder(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    try:
        from world.model import trained_world_clip
    except ImportError as exc:
        raise SystemExit(
            "bench/world/model.py (the trained world CLIP) is missing: pass --model DIR"
        ) from exc
    return trained_world_clip()


def upsample(grid: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(
        Image.fromarray(grid.astype(np.float32), "F").resize((size, size), Image.BILINEAR)
    )


def score_map(grid: np.ndarray, mask: np.ndarray) -> tuple[bool, float]:
    """(pointing-game hit, IoU of the thresholded map) for one map and one object mask."""
    size, g = mask.shape[0], grid.shape[0]
    patch = size / g
    row, col = np.unravel_index(int(np.argmax(grid)), grid.shape)
    y, x = int((row + 0.5) * patch), int((col + 0.5) * patch)
    near = binary_dilation(mask, iterations=max(1, int(patch // 2)))
    heat = upsample(grid, size)
    low, high = heat.min(), heat.max()
    region = heat >= low + 0.5 * (high - low) if high > low else np.zeros_like(mask)
    union = np.logical_or(region, mask).sum()
    return bool(near[y, x]), float(np.logical_and(region, mask).sum() / max(union, 1))


def random_point_hit(mask: np.ndarray, g: int) -> float:
    """Expected pointing-game hit of a uniformly random patch (same tolerance)."""
    size = mask.shape[0]
    patch = size / g
    near = binary_dilation(mask, iterations=max(1, int(patch // 2)))
    centres = ((np.arange(g) + 0.5) * patch).astype(int)
    return float(near[np.ix_(centres, centres)].mean())


def scene_runs(encoder, world, scenes: int):
    """Per held-out scene with visible objects: its objects and one kept tower pass."""
    for index in range(scenes):
        scene = world.scene(index, split="eval")
        objects = [o for o in scene.objects if o.visible and o.mask.any()]
        if objects:
            yield objects, HeatmapRun(encoder, scene.image)


def accuracy(folder: Path, scenes: int, seed: int) -> dict:
    from world import World, WorldSpec

    encoder = HFClipEncoder.from_pretrained(str(folder), device="cpu")
    size = int(encoder.processor.image_processor.crop_size["height"])
    world = World(WorldSpec(seed=seed, image_size=size))
    rows: dict[str, list[tuple[bool, float, int]]] = {m: [] for m in METHODS}
    chance: list[float] = []
    for objects, run in scene_runs(encoder, world, scenes):
        phrases = [o.phrase for o in objects]
        for method in METHODS:
            for obj, heatmap in zip(objects, run.maps(phrases, method)):
                hit, iou = score_map(heatmap.grid, obj.mask)
                rows[method].append((hit, iou, len(objects)))
        chance += [random_point_hit(o.mask, run.kept.grid) for o in objects]
    out = {}
    for method, values in rows.items():
        hits = np.array([v[0] for v in values], float)
        ious = np.array([v[1] for v in values])
        multi = np.array([v[2] > 1 for v in values])
        out[method] = {
            "objects": len(values),
            "pointing": float(hits.mean()),
            "pointing_multi": float(hits[multi].mean()),
            "iou": float(ious.mean()),
            "iou_multi": float(ious[multi].mean()),
        }
    out["random point"] = {"objects": len(chance), "pointing": float(np.mean(chance))}
    out["model"] = str(folder)
    return out


# -- cost on a ViT-B/32-sized model -----------------------------------------------------------


def cost(phrases: int, repeat: int) -> dict:
    from bench_probe import build_model, image, prompt_of

    model, processor = build_model()
    encoder = HFClipEncoder(model, processor, "bench:vit-b-32-random")
    texts = [t.strip() for t in prompt_of(phrases).split(",")]
    picture = image(0)

    def timed(run) -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    encoder.encode_images([picture])  # warm-up
    phrase_heatmaps(encoder, picture, texts)
    timed_methods = ("grad-eclip", "chefer", "chefer-2")
    encode: list[float] = []
    maps: dict[str, list[float]] = {m: [] for m in timed_methods}
    for _ in range(repeat):  # interleaved, so load on the machine hits all alike
        encode.append(timed(lambda: encoder.encode_images([picture])))
        for method in timed_methods:
            maps[method].append(timed(lambda m=method: phrase_heatmaps(encoder, picture, texts, m)))
    one = statistics.median(encode)
    every = timed(lambda: phrase_heatmaps(encoder, picture, texts, "chefer-all"))
    naive = timed(lambda: naive_per_phrase(encoder, picture, texts))
    encoder.cache.clear()
    encoder.prefix_store.clear()
    cold = timed(lambda: phrase_heatmaps(encoder, picture, texts))
    out = {
        "phrases": phrases,
        "threads": torch.get_num_threads(),
        "image_encode_s": one,
        "ratios": {m: statistics.median(t) / one for m, t in maps.items()},
        "seconds": {m: statistics.median(t) for m, t in maps.items()},
    }
    out["ratios"]["chefer-all (once)"] = every / one
    out["ratios"]["naive per-phrase forward+backward (once)"] = naive / one
    out["ratios"][f"{DEFAULT_METHOD}, cold text cache (once)"] = cold / one
    return out


def naive_per_phrase(encoder: HFClipEncoder, picture: Image.Image, texts: list[str]) -> None:
    """Chefer's recipe as usually run: one forward and backward through the model per phrase."""
    model = encoder.model
    pixels = encoder.processor.image_processor([picture], return_tensors="pt")["pixel_values"]
    text, _ = encoder.encode_texts(texts)
    for p in range(len(texts)):
        out = model.vision_model(pixel_values=pixels, output_attentions=True)
        features = model.visual_projection(out.pooler_output)[0]
        score = features @ text[p] / features.norm()
        torch.autograd.grad(score, out.attentions[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0, help="world seed")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--phrases", type=int, default=20)
    parser.add_argument("--model", help="folder of a CLIP trained on the world")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the cost")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    results: dict = {}
    if not args.skip_accuracy:
        results["accuracy"] = accuracy(world_model_folder(args.model), args.scenes, args.seed)
        print(
            f"{'method':<14} {'objects':>7} {'pointing':>9} {'(2+ obj)':>9} {'IoU':>6} {'(2+ obj)':>9}"
        )
        for method, r in results["accuracy"].items():
            if not isinstance(r, dict):
                continue
            line = f"{method:<14} {r['objects']:>7} {r['pointing']:>9.1%}"
            if "iou" in r:
                line += f" {r['pointing_multi']:>9.1%} {r['iou']:>6.3f} {r['iou_multi']:>9.3f}"
            print(line)
    if not args.skip_cost:
        torch.set_num_threads(args.threads)
        c = results["cost"] = cost(args.phrases, args.repeat)
        print(
            f"{c['phrases']} phrases, ViT-B/32-sized model, {c['threads']} thread(s): "
            f"one image encode {c['image_encode_s']:.3f} s (median of {args.repeat})"
        )
        for name, ratio in c["ratios"].items():
            print(f"  {name:<45} {ratio:6.2f}x one image encode")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
