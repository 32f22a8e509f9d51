"""Whole-process cost of a command-line analysis against the article's loop.

What a user waits for is the whole process: imports, model load, encodes, report.  This
runs, as separate processes, alternated round by round so that a busy machine slows all
of them alike:

- ``seed``: the article's loop as its script does it (``CLIPModel`` and ``CLIPProcessor``
  ``from_pretrained``, five rounds of the picture and the remaining phrases through the
  model; only ``requests`` and ``image.show()`` left out);
- ``rank``: ``python -m clipprobe_ext IMG --prompt ... --no-contribution --no-prune``;
- ``full``: the default analysis (contribution and pruned prompt too);

each of ClipProbe's with the embedding store (``clipprobe_ext/store.py``) in three states:
``warm`` (the same command ran before), ``banks`` (the store holds the model's reference
banks and another prompt's phrases, none of this prompt's) and ``cold`` (an empty cache
folder: the first run with a model).  Model: the ViT-B/32-sized random CLIP of
``bench_probe.py`` saved as a transformers folder; 58 phrases; one 512 x 512 picture;
``--device cpu`` (the seed runs on the CPU).

    python bench/bench_process.py [--rounds 5] [--cold 2] [--threads N] [--imports]
        [--before DIR] [--json out.json]

Every figure is from this one run; compare the ratios (each ClipProbe process against the
seed process of the same round, median over the rounds), not the seconds.  ``--threads``
sets ``OMP_NUM_THREADS`` for every process: on a machine whose cores are busy with other
work, torch's default (one thread per core) waits at every parallel step for a thread
that is not running, and a forward pass can take eight times as long (seen here).
``--before DIR``: also ``rank``/``full`` of an older engine (``DIR/clipprobe_ext``, e.g.
from ``git archive``), in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

PHRASES = 58
MODEL_DIR = Path.home() / ".cache" / "clipprobe-bench" / "vit-b32-random"

SEED_SCRIPT = """\
# The article's loop, as its script runs it (bench/bench_process.py writes this file):
# the model folder, the picture and the phrases ("|"-separated) come from the command line.
import sys

import numpy as np
from PIL import Image
from transformers import CLIPProcessor, CLIPModel

model = CLIPModel.from_pretrained(sys.argv[1])
processor = CLIPProcessor.from_pretrained(sys.argv[1])

name_image = sys.argv[2]
image = Image.open(name_image)
print(name_image)

arr_text = sys.argv[3].split("|")


def find_keywords(k, arr_text):
    inputs = processor(text=arr_text, images=image, return_tensors="pt", padding=True)
    outputs = model(**inputs)
    logits_per_image = outputs.logits_per_image
    probs = logits_per_image.softmax(dim=1)
    probs = probs.detach().numpy().flatten()
    for i, t in enumerate(arr_text):
        if probs[i] > 0.01:
            print("ROUND:{}, NO:{}, text:{} , probability:{}".format(k, i, t, round(probs[i], 6)))
    max_value = np.max(probs)
    max_address = np.argmax(probs)
    return max_value, max_address


for k in [1, 2, 3, 4, 5]:
    print("---- k = {} ----".format(k))
    max_value, max_address = find_keywords(k, arr_text)
    arr_text.remove(arr_text[max_address])
"""


def save_model(folder: Path) -> Path:
    """``bench_probe``'s ViT-B/32-sized random CLIP as a transformers folder (kept)."""
    if (folder / "config.json").is_file():
        return folder
    from bench_probe import build_model

    model, processor = build_model()
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    processor.save_pretrained(partial)
    partial.rename(folder)
    return folder


def save_picture(path: Path) -> Path:
    from bench_probe import image

    image(1).save(path)
    return path


class Runner:
    """Starts the processes; each ClipProbe run gets its own cache folder."""

    def __init__(
        self,
        work: Path,
        model: Path,
        picture: Path,
        phrases: list[str],
        threads: int | None,
        before: Path | None = None,
    ) -> None:
        self.work = work
        self.threads = threads
        self.before = before
        self.model = model
        self.picture = picture
        self.phrases = phrases
        self.script = work / "article_loop.py"
        self.script.write_text(SEED_SCRIPT, encoding="utf-8")
        self.runs = 0

    def env(self, cache: Path | None, engine: Path = ROOT) -> dict[str, str]:
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(engine))
        if self.threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(self.threads)
        if cache is not None:
            env["XDG_CACHE_HOME"] = str(cache)
        return env

    def command(self, kind: str, prompt: str | None = None) -> list[str]:
        if kind == "seed":
            return [
                sys.executable,
                str(self.script),
                str(self.model),
                str(self.picture),
                "|".join(self.phrases),
            ]
        cmd = [sys.executable, "-m", "clipprobe_ext", str(self.picture)]
        cmd += ["--prompt", prompt or ", ".join(self.phrases), "--model", str(self.model)]
        cmd += ["--device", "cpu", "-q"]
        if kind == "rank":
            cmd += ["--no-contribution", "--no-prune"]
        return cmd

    def time(
        self, kind: str, cache: Path | None = None, prompt: str | None = None, before=False
    ) -> float:
        engine = self.before if before else ROOT
        start = time.perf_counter()
        proc = subprocess.run(
            self.command(kind, prompt),
            env=self.env(cache, engine),
            cwd=engine,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{kind} failed ({proc.returncode}): {proc.stderr.strip()}")
        self.runs += 1
        return seconds

    def fresh_cache(self, template: Path | None = None) -> Path:
        folder = Path(tempfile.mkdtemp(prefix="cache-", dir=self.work))
        if template is not None:
            shutil.copytree(template, folder, dirs_exist_ok=True)
        return folder

    def import_times(self, kind: str, cache: Path) -> Counter:
        """Import self-time per top-level package (``-X importtime``), in seconds."""
        cmd = self.command(kind)
        cmd.insert(1, "-X")
        cmd.insert(2, "importtime")
        proc = subprocess.run(
            cmd, env=self.env(cache), cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        totals: Counter = Counter()
        for line in proc.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
            if m:
                totals[m.group(2).split(".")[0]] += int(m.group(1)) / 1e6
        return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold", type=int, default=2, help="rounds that also run cold")
    parser.add_argument("--model", type=Path, default=MODEL_DIR)
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of every process")
    parser.add_argument("--before", type=Path, help="an older engine's folder, to compare")
    parser.add_argument("--imports", action="store_true", help="-X importtime of seed and rank")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from bench_probe import prompt_of

    phrases = [t.strip() for t in prompt_of(PHRASES).split(",")]
    model = save_model(args.model)
    with tempfile.TemporaryDirectory(prefix="clipprobe-process-") as tmp:
        work = Path(tmp)
        picture = save_picture(work / "picture.png")
        runner = Runner(work, model, picture, phrases, args.threads, args.before)
        # The store states.  banks: the reference banks and another prompt's phrases.
        banks = runner.fresh_cache()
        runner.time("rank", banks, prompt="a photo, a red apple on a wooden table")
        warm = runner.fresh_cache()
        runner.time("full", warm)  # the same commands before: everything stored
        runner.time("rank", warm)
        threads = args.threads or "torch's default"
        print(f"{os.cpu_count()} CPUs, threads: {threads}, {PHRASES} phrases, model {model}")

        kinds = ["seed", "rank-warm", "full-warm", "rank-banks", "full-banks"]
        if args.before:
            kinds += ["rank-before", "full-before"]
        times: dict[str, list[float]] = {k: [] for k in [*kinds, "rank-cold", "full-cold"]}
        ratios: dict[str, list[float]] = {k: [] for k in times if k != "seed"}
        for r in range(args.rounds):
            order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
            if r < args.cold:
                order += ["rank-cold", "full-cold"] if r % 2 else ["full-cold", "rank-cold"]
            measured = {}
            for name in order:
                kind, _, state = name.partition("-")
                cache = {
                    "warm": warm,
                    "banks": runner.fresh_cache(banks),
                    "cold": runner.fresh_cache(),
                    "before": runner.fresh_cache(),
                    "": None,
                }[state]
                measured[name] = runner.time(kind, cache, before=state == "before")
                if state in ("banks", "cold", "before"):
                    shutil.rmtree(cache, ignore_errors=True)
            for name, seconds in measured.items():
                times[name].append(seconds)
                if name != "seed":
                    ratios[name].append(seconds / measured["seed"])
            print(f"round {r + 1}: " + ", ".join(f"{k} {v:.2f} s" for k, v in measured.items()))

        print(f"\n{args.rounds} rounds, {runner.runs} processes; median seconds and the median")
        print("of each round's ratio to that round's seed process:")
        summary = {}
        for name, values in times.items():
            if not values:
                continue
            row = {"median_s": statistics.median(values), "runs": values}
            if name != "seed":
                row["ratio_to_seed"] = statistics.median(ratios[name])
                row["ratios"] = ratios[name]
            summary[name] = row
            ratio = f"  {row['ratio_to_seed']:.2f}x the seed" if "ratio_to_seed" in row else ""
            print(f"  {name:<11} {row['median_s']:6.2f} s{ratio}")
        result = {"phrases": PHRASES, "threads": args.threads, "summary": summary}

        if args.imports:
            print("\nimport self-time per package (-X importtime, one process each):")
            seed_imports = runner.import_times("seed", warm)
            rank_imports = runner.import_times("rank", warm)
            for label, totals in (("seed", seed_imports), ("rank", rank_imports)):
                top = ", ".join(f"{k} {v:.2f}" for k, v in totals.most_common(6))
                print(f"  {label}: {sum(totals.values()):.2f} s in all ({top})")
            result["imports"] = {"seed": seed_imports, "rank": rank_imports}
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
