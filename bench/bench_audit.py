"""Speed and memory of ``clipprobe audit`` on a folder of generated pictures.

Model: a ViT-B/32-sized CLIP (``CLIPModel(CLIPConfig())``, random weights: the cost of a
real one, no download) with the real CLIP tokenizer, as in ``bench_probe.py``.  Pictures:
512x512 PNGs with WebUI ``parameters`` chunks, 50 distinct prompts of 8-16 tag phrases.
To write 10,000 files quickly, 100 distinct pixel bodies are compressed once and each file
gets its own ``parameters`` chunk (its seed), so every file has its own content hash and
costs a full read, decode and encode: the audit cannot tell them apart from real ones.
Every audit runs in a fresh subprocess so its peak RSS is its own.

    python bench/bench_audit.py [--files 1000] [--growth-files 10000] [--json out.json]

Targets:
- first run over 1,000 files: >= 0.85x the bare batched image-encode throughput of the
  same model (``encoder.encode_images`` on pictures already decoded in memory);
- second run over the same folder: >= 20x faster than the first (store hits only);
- peak memory flat in the number of files (10,000 cost no more than 1,000 plus the
  store's page cache), and how time grows from 1,000 to 10,000 files.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

PROMPT_COUNT = 50
BODIES = 100
HABITS = ["masterpiece", "best quality", "ultra detailed", "8k", "trending on artstation"]
_TAGS = (
    "1girl, solo, long hair, blue eyes, smiling, looking at viewer, holding umbrella, "
    "sun hat, white dress, sunglasses, beach, ocean, clouds, blue sky, palm tree, sunset, "
    "golden hour, soft lighting, cinematic lighting, depth of field, bokeh, film grain, "
    "35mm photograph, illustration, watercolor, oil painting, by claude monet, by hokusai, "
    "pixel art, highly detailed face, sharp focus, intricate, elegant, vibrant colors, "
    "pastel colors, wind, flowers, cherry blossoms, petals, butterfly, sand, waves, "
    "reflection, lens flare, hdr, award winning, studio ghibli, anime style, dramatic, "
    "castle, forest, snow, night, city lights, rain, cat, dog, red car, mountain"
)
TAGS = [t.strip() for t in _TAGS.split(",")]


# -- the folder ----------------------------------------------------------------------------


def prompts() -> list[str]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(50):
        habits = [h for h in HABITS if rng.random() < 0.7]
        tags = list(rng.choice(TAGS, size=int(rng.integers(5, 12)), replace=False))
        weighted = [f"({t}:1.2)" if rng.random() < 0.15 else t for t in tags]
        out.append(", ".join(habits[:2] + weighted + habits[2:]))
    return out


def _chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def bodies() -> list[bytes]:
    """PNG files without metadata (Pillow's default compression, as the WebUI saves)."""
    from PIL import Image

    rng = np.random.default_rng(1)
    x = np.linspace(0, 255, 512)
    out = []
    for _ in range(BODIES):
        tint = rng.uniform(0.2, 1.0, size=(2, 3))
        base = (x[None, :, None] * tint[0] + x[:, None, None] * tint[1]) / 2
        pixels = np.clip(base + rng.integers(0, 40, (512, 512, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


def write_folder(folder: Path, count: int, prompt_count: int = PROMPT_COUNT) -> None:
    """``count`` PNGs: body i % 100, prompt i % 50, a ``parameters`` chunk with seed i."""
    folder.mkdir(parents=True, exist_ok=True)
    all_prompts, all_bodies = prompts()[:prompt_count], bodies()
    for i in range(count):
        body = all_bodies[i % BODIES]
        text = (
            f"{all_prompts[i % prompt_count]}\nNegative prompt: lowres, bad anatomy\n"
            f"Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: {1000 + i}, "
            "Size: 512x512, Model: bench"
        )
        chunk = _chunk(b"tEXt", b"parameters\x00" + text.encode("latin-1"))
        ihdr_end = 8 + 25  # signature + IHDR chunk
        (folder / f"{i:05}-{1000 + i}.png").write_bytes(body[:ihdr_end] + chunk + body[ihdr_end:])


# -- children --------------------------------------------------------------------------------


def small_config():
    from transformers import CLIPConfig

    return CLIPConfig(
        text_config={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        vision_config={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "patch_size": 32,
            "image_size": 224,
        },
        projection_dim=64,
    )


def encoder_for(size: str):
    """The ViT-B/32-sized model of ``bench_probe`` ("big") or a 2-layer one ("small")."""
    import torch
    from transformers import CLIPModel

    from clipprobe_ext.encoders.hf import HFClipEncoder

    if size == "big":
        from bench_probe import build_model

        model, processor = build_model()
    else:
        from tempfile import TemporaryDirectory

        from tiny_clip import save_tiny_hf_clip
        from transformers import CLIPProcessor

        with TemporaryDirectory() as folder:  # the real vocabulary, 224-pixel preprocessing
            processor = CLIPProcessor.from_pretrained(save_tiny_hf_clip(Path(folder)))
        processor.image_processor.size = {"shortest_edge": 224}
        processor.image_processor.crop_size = {"height": 224, "width": 224}
        torch.manual_seed(0)
        model = CLIPModel(small_config()).eval()
    return HFClipEncoder(model, processor, f"hf:bench-{size}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_baseline(spec: dict) -> dict:
    """Bare batched image encodes of pictures already decoded in memory."""
    import torch

    from clipprobe_ext.images import load_image

    encoder = encoder_for(spec["model"])
    files = sorted(Path(spec["folder"]).glob("*.png"))[: spec["pictures"]]
    images = [load_image(str(f)) for f in files]
    encoder.encode_images(images[: encoder.batch_size])  # warm-up
    best = float("inf")
    for _ in range(spec.get("repeat", 1)):
        start = time.perf_counter()
        encoder.encode_images(images)
        best = min(best, time.perf_counter() - start)
    n = min(64, len(images))
    pixels = encoder.processor.image_processor(images[:n], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        start = time.perf_counter()
        for i in range(0, n, 32):
            encoder.model.get_image_features(pixel_values=pixels[i : i + 32])
        forward = time.perf_counter() - start
    return {
        "pictures": len(images),
        "seconds": best,
        "pictures_per_s": len(images) / best,
        "forward_only_pictures_per_s": n / forward,
        "peak_rss_mb": peak_rss_mb(),
    }


def child_audit(spec: dict) -> dict:
    from clipprobe_ext.audit.pipeline import AuditOptions, run_audit

    encoder = encoder_for(spec["model"])
    rss_model = peak_rss_mb()
    spent = {"images": 0.0, "texts": 0.0, "preprocess": 0.0}

    def timed(name, method):
        def wrapper(*a, **kw):
            start = time.perf_counter()
            try:
                return method(*a, **kw)
            finally:
                spent[name] += time.perf_counter() - start

        return wrapper

    encoder.encode_images = timed("images", encoder.encode_images)
    encoder.encode_chunks = timed("texts", encoder.encode_chunks)
    # The processor's work inside encode_images, patched on the class: an instance
    # attribute would enter the processor's description, hence the store's model key.
    kind = type(encoder.processor.image_processor)
    kind.preprocess = timed("preprocess", kind.preprocess)
    options = AuditOptions(
        cache=spec["store"],
        workers=spec.get("workers", 2),
        contribution=spec.get("contribution", False),
    )
    start = time.perf_counter()
    report = run_audit([spec["folder"]], encoder, options)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "pictures": report.stats.pictures,
        "encoded": report.stats.encoded,
        "from_store": report.stats.from_store,
        "text_encodes": report.stats.text_encodes,
        "pictures_per_s": report.stats.pictures / seconds,
        "image_encode_s": spent["images"],
        "text_encode_s": spent["texts"],
        "preprocess_s": spent["preprocess"],
        "waited_for_readers_s": report.stats.waited_s,
        "peak_rss_model_mb": rss_model,
        "peak_rss_mb": peak_rss_mb(),
        "habit_words": report.habit_words,
    }


def child(kind: str, spec: dict) -> dict:
    """Run one measurement in a fresh interpreter; its JSON result."""
    result = subprocess.run(
        [sys.executable, __file__, "--child", kind, json.dumps(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    if result.returncode != 0:
        raise SystemExit(f"child {kind} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--growth-files", type=int, default=10000)
    parser.add_argument("--growth-base", type=int, default=1000, help="the small end of growth")
    parser.add_argument("--baseline-pictures", type=int, default=128)
    parser.add_argument(
        "--contribution", action="store_true", help="audit with leave-one-out (off by default)"
    )
    parser.add_argument("--prompts", type=int, default=PROMPT_COUNT, help="distinct prompts")
    parser.add_argument("--growth-model", choices=["small", "big"], default="small")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/clipprobe-bench-audit"))
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    parser.add_argument("--skip", nargs="*", default=[], help="steps to skip: growth")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, spec = args.child
        run = {"baseline": child_baseline, "audit": child_audit}[kind]
        print(json.dumps(run(json.loads(spec))))
        return 0

    import torch

    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    bench = work / f"bench-{args.files}"
    base, large = work / f"growth-{args.growth_base}", work / f"growth-{args.growth_files}"
    start = time.perf_counter()
    write_folder(large, max(args.files, args.growth_files, args.growth_base), args.prompts)
    everything = sorted(large.iterdir())
    for folder, count in ((bench, args.files), (base, args.growth_base)):
        if folder == large:
            continue
        folder.mkdir()
        for path in everything[:count]:  # hard links: the same files, no second copy
            os.link(path, folder / path.name)
    size = sum(f.stat().st_size for f in everything[:100]) / 100 / 1024
    print(
        f"wrote {len(everything)} files in {time.perf_counter() - start:.0f} s ({size:.0f} KB each)"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")
    results: dict = {}

    def step(name: str, kind: str, **spec) -> dict:
        results[name] = child(kind, spec)
        print(f"  {name}: {json.dumps(results[name])}", flush=True)
        return results[name]

    b1 = step(
        "baseline_before",
        "baseline",
        model="big",
        folder=str(bench),
        pictures=args.baseline_pictures,
    )
    extra = {"contribution": args.contribution}
    first = step(
        "first_run", "audit", model="big", folder=str(bench), store=str(work / "b.db"), **extra
    )
    second = step(
        "second_run", "audit", model="big", folder=str(bench), store=str(work / "b.db"), **extra
    )
    b2 = step(
        "baseline_after",
        "baseline",
        model="big",
        folder=str(bench),
        pictures=args.baseline_pictures,
    )
    bare = max(b1["pictures_per_s"], b2["pictures_per_s"])
    print(
        f"\nfirst run {first['seconds']:.1f} s = {first['pictures_per_s']:.2f} pictures/s; "
        f"bare batched image encode {bare:.2f} pictures/s -> "
        f"{first['pictures_per_s'] / bare:.2f}x (target >= 0.85x)"
    )
    print(
        f"second run {second['seconds']:.2f} s -> {first['seconds'] / second['seconds']:.0f}x "
        "faster (target >= 20x)"
    )
    if "growth" not in args.skip:
        m = args.growth_model
        g1 = step(
            "growth_first_small", "audit", model=m, folder=str(base), store=str(work / "s1.db")
        )
        g2 = step(
            "growth_first_large", "audit", model=m, folder=str(large), store=str(work / "s2.db")
        )
        c1 = step(
            "growth_cached_small", "audit", model=m, folder=str(base), store=str(work / "s1.db")
        )
        c2 = step(
            "growth_cached_large", "audit", model=m, folder=str(large), store=str(work / "s2.db")
        )
        ratio = args.growth_files / args.growth_base
        print(
            f"\ngrowth {args.growth_base} -> {args.growth_files} files ({ratio:.0f}x), {m} model:"
        )
        print(
            f"  first run  {g1['seconds']:.1f} s -> {g2['seconds']:.1f} s "
            f"({g2['seconds'] / g1['seconds']:.1f}x); peak RSS {g1['peak_rss_mb']:.0f} -> "
            f"{g2['peak_rss_mb']:.0f} MB"
        )
        print(
            f"  cached run {c1['seconds']:.2f} s -> {c2['seconds']:.2f} s "
            f"({c2['seconds'] / c1['seconds']:.1f}x); peak RSS {c1['peak_rss_mb']:.0f} -> "
            f"{c2['peak_rss_mb']:.0f} MB"
        )
        store = work / "s2.db"
        print(f"  store size for {args.growth_files} files: {store.stat().st_size / 2**20:.1f} MB")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
