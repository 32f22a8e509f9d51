"""Is ClipProbe's advice right?  Every signal and verdict against a world's ground truth.

    cd bench && python bench_advice.py [--pictures 300] [--batches 40] [--json out.json]

A small CLIP is trained on the world of ``world/`` (seed ``--world-seed``, cached in
~/.cache/clipprobe-bench); the evaluation pictures come from a fresh world seed
(``--eval-seed``, same vocabulary), never seen in training.  Each picture gets a prompt
written like a real one (``world/prompts.py``) and is analysed by the real
``clipprobe_ext.probe.analyze`` with the real encoder (``HFClipEncoder.from_pretrained``).
Phrases a style hid (a colour under greyscale, a small shape under pixelation) are
labelled ``hidden`` and left out of every score.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from world import World, WorldSpec  # noqa: E402
from world.model import Recipe, trained_world_clip  # noqa: E402
from world.prompts import make_prompt  # noqa: E402

from clipprobe_ext.analysis.presence import signals  # noqa: E402
from clipprobe_ext.analysis.references import reference_banks  # noqa: E402
from clipprobe_ext.encoders.hf import HFClipEncoder  # noqa: E402
from clipprobe_ext.probe import ProbeOptions, analyze  # noqa: E402

VERDICTS = ("keep", "weak", "prune")


def auroc(pos: list[float], neg: list[float]) -> float | None:
    """Probability that a random positive outscores a random negative (ties count half)."""
    if not pos or not neg:
        return None
    values = np.concatenate([pos, neg])
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):  # average ranks of ties
        tie = values == v
        if tie.sum() > 1:
            ranks[tie] = ranks[tie].mean()
    r = ranks[: len(pos)].sum()
    return float((r - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def phrase_rows(report, prompt, images, encoder, banks, null) -> list[dict]:
    """One row per judged phrase: truth, every signal, the verdict."""
    by_text = {p.text: p for p in report.phrases if p.measurable}
    verdicts = {v.index: v for v in report.verdicts}
    texts = [p.text for p in prompt.phrases]
    emb, _ = encoder.encode_texts(texts)
    img = encoder.encode_images(images).numpy().astype(np.float64)
    cand = signals(img, emb.numpy().astype(np.float64), banks, encoder.logit_scale, null)
    rows = []
    for k, truth in enumerate(prompt.phrases):
        info = by_text[truth.text]
        i = info.index
        v = verdicts[i]
        round1 = [
            dict(zip(a.ranking.rounds[0].candidates, a.ranking.rounds[0].probabilities))[i]
            for a in report.images
        ]
        best = [a.ranking.max_probability(i) for a in report.images]
        loo = [a.contribution.contributions[i] for a in report.images]
        row = {
            "text": truth.text,
            "label": truth.label,
            "kind": truth.kind,
            "twin": truth.twin,
            "round1": float(np.mean(round1)),
            "best": float(np.mean(best)),
            "loo": float(np.mean(loo)),
            "verdict": v.verdict,
            "pruned": v.pruned,
            "reason": v.reason,
        }
        for name, values in cand.items():
            row[name] = float(values[:, k].mean())
        presence = getattr(v, "presence", None)
        if presence is not None:
            row["presence"] = float(presence)
        rows.append(row)
    return rows


def evaluate(rows: list[dict], threshold: float) -> dict:
    judged = [r for r in rows if r["label"] in ("present", "absent")]
    signal_names = [k for k in rows[0] if k in SIGNALS]
    out: dict = {"counts": dict(Counter(r["label"] for r in rows))}
    aurocs = {}
    for name in signal_names:
        entry = {}
        for group, kinds in (
            ("all", ("object", "style")),
            ("objects", ("object",)),
            ("styles", ("style",)),
        ):
            sel = [r for r in judged if r["kind"] in kinds]
            entry[group] = auroc(
                [r[name] for r in sel if r["label"] == "present"],
                [r[name] for r in sel if r["label"] == "absent"],
            )
        entry["swap_wins"] = None  # filled per prompt by ``swap_wins``
        aurocs[name] = entry
    out["auroc"] = aurocs
    out["confusion"] = {
        label: dict(Counter(r["verdict"] for r in rows if r["label"] == label))
        for label in ("present", "absent", "quality", "hidden")
    }
    seen = [r["best"] > threshold for r in judged]
    truth = [r["label"] == "present" for r in judged]
    tp = sum(s and t for s, t in zip(seen, truth))
    out["original_rule"] = {
        "precision": tp / max(1, sum(seen)),
        "recall": tp / max(1, sum(truth)),
        "base_rate": sum(truth) / max(1, len(truth)),
        "absent_above_threshold": float(
            np.mean([r["best"] > threshold for r in judged if r["label"] == "absent"])
        ),
    }
    out["pruned_share"] = {
        label: float(np.mean([r["pruned"] for r in rows if r["label"] == label] or [np.nan]))
        for label in ("absent", "present", "quality", "hidden")
    }
    out["verdict_share"] = {
        label: {
            v: float(np.mean([r["verdict"] == v for r in rows if r["label"] == label] or [np.nan]))
            for v in VERDICTS
        }
        for label in ("present", "absent", "quality")
    }
    return out


SIGNALS = (
    "round1",
    "best",
    "loo",
    "cosine",
    "cosine_z",
    "phrase_z",
    "image_z",
    "null",
    "background",
    "double_z",
    "double_median",
    "presence",
)


def swap_wins(prompts_rows: list[list[dict]], name: str) -> float | None:
    wins = []
    for rows in prompts_rows:
        present = {r["text"]: r for r in rows if r["label"] == "present"}
        for r in rows:
            if r["label"] == "absent" and r["twin"] in present:
                wins.append(r[name] > present[r["twin"]][name])
    return float(np.mean(wins)) if wins else None


def run(args) -> dict:
    spec = WorldSpec(seed=args.world_seed, image_size=args.image_size)
    folder = args.model or trained_world_clip(spec, Recipe(more_steps=args.more_steps))
    metrics = json.loads((folder / "metrics.json").read_text())
    encoder = HFClipEncoder.from_pretrained(str(folder), device="cpu")
    start = time.time()
    banks = reference_banks(encoder)
    null = encoder.encode_texts([""])[0].numpy().astype(np.float64)[0]
    eval_spec = WorldSpec(seed=args.eval_seed, image_size=args.image_size)
    world = World(eval_spec)
    rng = np.random.default_rng(args.eval_seed)
    options = ProbeOptions(rounds=args.rounds)
    result = {
        "model": str(folder),
        "retrieval_top1": metrics["retrieval_top1"],
        "world_seed": args.world_seed,
        "eval_seed": args.eval_seed,
    }
    for mode, count in (("single", args.pictures), ("batch", args.batches)):
        per_prompt = []
        analysis_time = 0.0
        for n in range(count):
            scene = world.scene(n if mode == "single" else 50_000 + n, "eval")
            scenes = [scene]
            if mode == "batch":
                scenes += [world.scene(60_000 + 4 * n + j, "eval", like=scene) for j in range(3)]
            prompt = make_prompt(scenes, eval_spec, rng)
            images = [s.image for s in scenes]
            t = time.perf_counter()
            report = analyze(images, prompt.prompt, encoder, options)
            analysis_time += time.perf_counter() - t
            per_prompt.append(phrase_rows(report, prompt, images, encoder, banks, null))
        rows = [r for rs in per_prompt for r in rs]
        res = evaluate(rows, options.threshold)
        for name in res["auroc"]:
            res["auroc"][name]["swap_wins"] = swap_wins(per_prompt, name)
        res["prompts"] = count
        res["analysis_seconds_per_prompt"] = analysis_time / max(1, count)
        res["examples"] = per_prompt[0]
        res["rows"] = rows
        result[mode] = res
    result["seconds"] = round(time.time() - start, 1)
    return result


def fmt(x, pct=False) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    return f"{100 * x:.0f} %" if pct else f"{x:.3f}"


def print_table(result: dict) -> None:
    print(
        f"model {result['model']}: held-out retrieval top-1 {result['retrieval_top1']:.1%}; "
        f"evaluation pictures from world seed {result['eval_seed']}"
    )
    for mode in ("single", "batch"):
        res = result[mode]
        title = "one picture per prompt" if mode == "single" else "batches: 4 seeds of one prompt"
        print(f"\n## {title} ({res['prompts']} prompts, phrases: {res['counts']})")
        print("| signal | AUROC all | objects | styles | absent swap beats its present twin |")
        print("|---|---|---|---|---|")
        for name, e in res["auroc"].items():
            print(
                f"| {name} | {fmt(e['all'])} | {fmt(e['objects'])} | {fmt(e['styles'])} "
                f"| {fmt(e['swap_wins'], True)} |"
            )
        print("\n| truth \\ verdict | keep | weak | prune |")
        print("|---|---|---|---|")
        for label, shares in res["verdict_share"].items():
            print(f"| {label} | " + " | ".join(fmt(shares[v], True) for v in VERDICTS) + " |")
        o = res["original_rule"]
        print(
            f"\noriginal rule 'seen if above 1 % in some round': precision {o['precision']:.2f}, "
            f"recall {o['recall']:.2f} (base rate {o['base_rate']:.2f}; "
            f"{o['absent_above_threshold']:.0%} of absent phrases rose above 1 %)"
        )
        p = res["pruned_share"]
        print(
            f"pruned prompt removes: {fmt(p['absent'], True)} of absent, "
            f"{fmt(p['present'], True)} of present, {fmt(p['quality'], True)} of quality tags"
        )
        print(f"analysis time per prompt: {res['analysis_seconds_per_prompt'] * 1000:.0f} ms")


def suggest(result: dict, signal: str = "cosine_z") -> dict:
    """Verdict constants from the measurements of a tuning run (not the held-out seed).

    ``midpoint``: the score where the share of present phrases below it equals the share
    of absent phrases above it (presence 0.5 there); ``not_seen``: the score under which
    at most 1 % of present phrases fall; ``seen``: the score above which at most 5 % of
    absent phrases rise.
    """
    rows = [r for r in result["single"]["rows"] if r["label"] in ("present", "absent")]
    present = np.array([r[signal] for r in rows if r["label"] == "present"])
    absent = np.array([r[signal] for r in rows if r["label"] == "absent"])
    grid = np.linspace(min(present.min(), absent.min()), max(present.max(), absent.max()), 2001)
    gap = [abs((present < g).mean() - (absent >= g).mean()) for g in grid]
    return {
        "signal": signal,
        "midpoint": float(grid[int(np.argmin(gap))]),
        "not_seen": float(np.quantile(present, 0.01)),
        "seen": float(np.quantile(absent, 0.95)),
        "absent_under_not_seen": float((absent < np.quantile(present, 0.01)).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world-seed", type=int, default=0, help="world the model learned")
    parser.add_argument("--eval-seed", type=int, default=1, help="world the pictures come from")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--pictures", type=int, default=300)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", type=Path, help="a trained model folder (default: train)")
    parser.add_argument("--more-steps", type=int, default=0, help="second training phase")
    parser.add_argument("--suggest", action="store_true", help="print verdict constants")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()
    result = run(args)
    print_table(result)
    if args.suggest:
        print("\nsuggested constants (tuning run):", json.dumps(suggest(result)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
