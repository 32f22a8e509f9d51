"""Speed and memory of ClipProbe against the original per-round method.

Model: a ViT-B/32-sized CLIP (``CLIPModel(CLIPConfig())``, random weights: the cost of
a real one, no download) with the real CLIP tokenizer.  Prompts of 20 and 60 phrases,
k = 5 rounds.  Every figure is measured in this one run; compare ratios, not seconds.

    python bench/bench_probe.py [--repeat 3] [--sizes 20 60] [--json out.json]

Targets:
- ranking, cold cache: >= 4x faster than the per-round method, within 1.3x of the
  floor (one image encode + one batched encode of the unique texts);
- warm re-analysis (new image, same prompt): about one image encode;
- full analysis (ranking + contribution + pruning) of 60 phrases: < 3 s on 2 cores;
- pruning search cost grows about linearly from 20 to 60 phrases (naive greedy:
  quadratically).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from clipprobe_ext.analysis.pruning import naive_greedy_prune  # noqa: E402
from clipprobe_ext.encoders.base import TextEmbeddingCache  # noqa: E402
from clipprobe_ext.encoders.hf import HFClipEncoder  # noqa: E402
from clipprobe_ext.layout import PromptLayout  # noqa: E402
from clipprobe_ext.probe import ProbeOptions, analyze  # noqa: E402
from clipprobe_ext.prompt import parse_prompt  # noqa: E402

TAGS = (
    "masterpiece, best quality, ultra detailed, 1girl, solo, long hair, blue eyes, smiling, "
    "looking at viewer, holding umbrella, parasol, sun hat, white dress, bikini, sunglasses, "
    "beach, ocean, clouds, blue sky, palm tree, sunset, golden hour, soft lighting, "
    "cinematic lighting, depth of field, bokeh, film grain, 35mm photograph, ukiyoe, "
    "illustration, watercolor, oil painting, by claude monet, by vincent van gogh, "
    "by hokusai, minecraft, pixel art, trending on artstation, highly detailed face, "
    "sharp focus, intricate, elegant, vibrant colors, pastel colors, wind, flowers, "
    "cherry blossoms, petals, butterfly, seagull, sand, waves, reflection, lens flare, "
    "8k, hdr, award winning, studio ghibli, anime style, dramatic"
)


def prompt_of(n: int) -> str:
    tags = [t.strip() for t in TAGS.split(",")]
    assert len(tags) >= n, len(tags)
    return ", ".join(tags[:n])


def build_model() -> tuple[object, object]:
    """ViT-B/32-sized CLIPModel with random weights, and a processor with the real vocab."""
    from tiny_clip import save_tiny_hf_clip
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor

    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig()).eval()
    with TemporaryDirectory() as folder:
        processor = CLIPProcessor.from_pretrained(save_tiny_hf_clip(Path(folder)))
    processor.image_processor.size = {"shortest_edge": 224}
    processor.image_processor.crop_size = {"height": 224, "width": 224}
    return model, processor


def image(seed: int):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (512, 512, 3), dtype=np.uint8), "RGB")


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def per_round_method(model, processor, img, texts: list[str], rounds: int = 5) -> int:
    """The article's loop: image and all remaining phrases through the model every round."""
    remaining, forwards = list(texts), 0
    with torch.inference_mode():
        for _ in range(rounds):
            inputs = processor(text=remaining, images=img, return_tensors="pt", padding=True)
            probs = model(**inputs).logits_per_image.softmax(dim=1)
            forwards += 1 + len(remaining)
            del remaining[int(probs.argmax())]
    return forwards


def floor(model, processor, img, texts: list[str]) -> None:
    """One image encode + one batched encode of the unique texts: no method can do less."""
    with torch.inference_mode():
        model.get_image_features(**processor(images=img, return_tensors="pt"))
        model.get_text_features(
            **processor(text=sorted(set(texts)), return_tensors="pt", padding=True)
        )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_size(n: int, model, processor, repeat: int) -> dict:
    """Every timing and count for one prompt size, all in this process."""

    def fresh() -> HFClipEncoder:  # a cold text cache (the weights' shared one would be warm)
        return HFClipEncoder(model, processor, "bench", TextEmbeddingCache())

    img_a, img_b = image(1), image(2)
    rank_only = ProbeOptions(contribution=False, prune=False)
    prompt = prompt_of(n)
    texts = [p.text for p in parse_prompt(prompt).measurable]
    r: dict = {"phrases": n}
    analyze([img_a], prompt, fresh(), rank_only)  # warm up kernels

    r["per_round_s"], r["per_round_forwards"] = best_of(
        repeat, lambda: per_round_method(model, processor, img_a, texts)
    )
    r["floor_s"], _ = best_of(repeat, lambda: floor(model, processor, img_a, texts))

    def cold_ranking():
        enc = fresh()
        analyze([img_a], prompt, enc, rank_only)
        return enc.stats

    r["ranking_cold_s"], stats = best_of(repeat, cold_ranking)
    r["ranking_cold_forwards"] = stats.image_forwards + stats.text_forwards

    warm = fresh()
    analyze([img_a], prompt, warm, rank_only)
    before = warm.stats.text_forwards
    r["ranking_warm_new_image_s"], _ = best_of(
        repeat, lambda: analyze([img_b], prompt, warm, rank_only)
    )
    r["ranking_warm_text_forwards"] = warm.stats.text_forwards - before
    r["image_encode_s"], _ = best_of(repeat, lambda: fresh().encode_images([img_b]))

    def full():
        enc = fresh()
        report = analyze([img_a], prompt, enc)
        return enc.stats, report

    r["full_cold_s"], (stats, report) = best_of(repeat, full)
    r["full_text_tokens"] = stats.text_tokens
    r["full_text_forwards"] = stats.text_forwards
    r["prune_removed"] = len(report.pruning.removed)
    r["prune_variant_measurements"] = report.pruning.full_encodes
    r["peak_rss_mb"] = peak_rss_mb()
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 60])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    torch.set_grad_enabled(False)
    model, processor = build_model()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, ViT-B/32-sized CLIP")
    print(f"peak RSS after loading the model: {peak_rss_mb():.0f} MB")

    def fresh() -> HFClipEncoder:
        return HFClipEncoder(model, processor, "bench", TextEmbeddingCache())

    results = {str(n): measure_size(n, model, processor, args.repeat) for n in args.sizes}
    img_a = image(1)

    # The quadratic reference, measured on the smallest prompt only (it is slow).
    n0 = str(min(args.sizes))
    prompt = prompt_of(int(n0))
    enc = fresh()
    parsed = parse_prompt(prompt)
    measurable = [p.index for p in parsed.measurable]
    layout = PromptLayout(parsed, measurable, enc, enc.encode_images([img_a]).numpy().astype(float))
    everything = frozenset(measurable)
    original = float(layout.similarities([everything])[0, 0])
    start = time.perf_counter()
    naive = naive_greedy_prune(
        measurable, original, lambda v: layout.similarities(v).mean(0), tolerance=0.01
    )
    results[n0]["naive_prune_s"] = time.perf_counter() - start
    results[n0]["naive_prune_measurements"] = naive.evaluations + len(measurable) + 1

    print()
    for n, r in results.items():
        print(f"== {n} phrases, k = 5 ==")
        print(
            f"  per-round method   {r['per_round_s']:.3f} s  ({r['per_round_forwards']} forwards)"
        )
        print(f"  floor              {r['floor_s']:.3f} s")
        print(
            f"  ranking, cold      {r['ranking_cold_s']:.3f} s  ({r['ranking_cold_forwards']} forwards)"
            f"  -> {r['per_round_s'] / r['ranking_cold_s']:.1f}x faster than per-round,"
            f" {r['ranking_cold_s'] / r['floor_s']:.2f}x the floor"
        )
        print(
            f"  ranking, warm      {r['ranking_warm_new_image_s']:.3f} s"
            f"  ({r['ranking_warm_text_forwards']} text forwards)"
            f" -> {r['ranking_warm_new_image_s'] / r['image_encode_s']:.2f}x one image encode"
            f" ({r['image_encode_s']:.3f} s)"
        )
        print(
            f"  full analysis      {r['full_cold_s']:.3f} s  ({r['full_text_forwards']} chunk"
            f" encodes, {r['full_text_tokens']} tokens computed;"
            f" pruning removed {r['prune_removed']}, measured {r['prune_variant_measurements']}"
            " prompt variants)"
        )
        if "naive_prune_measurements" in r:
            print(
                f"  naive greedy prune {r['naive_prune_s']:.3f} s"
                f" ({r['naive_prune_measurements']} prompt variants measured)"
            )
        print(f"  peak RSS so far    {r['peak_rss_mb']:.0f} MB")
    sizes = sorted(results, key=int)
    if len(sizes) > 1:
        lo, hi = results[sizes[0]], results[sizes[-1]]
        print(
            f"\npruning search growth {sizes[0]} -> {sizes[-1]} phrases"
            f" ({int(sizes[-1]) / int(sizes[0]):.0f}x): variants measured"
            f" {lo['prune_variant_measurements']} -> {hi['prune_variant_measurements']}"
            f" ({hi['prune_variant_measurements'] / lo['prune_variant_measurements']:.1f}x),"
            f" full-analysis time {hi['full_cold_s'] / lo['full_cold_s']:.1f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
