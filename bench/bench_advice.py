"""Is ClipProbe's advice right?  Every signal and verdict against a world's ground truth.

    cd bench && python bench_advice.py [--pictures 300] [--batches 40] [--json out.json]

One command does it all: trains the world's model when it is not cached; fits the
model's presence calibration on the tuning seed (``--tune-seed``, 0) when its folder has
none (``--refit`` to redo it) and writes it there (``clipprobe_presence.json``, read by
ClipProbe for that model); then measures on the held-out seed (``--eval-seed``, 1).

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
# ``--before DIR``: the same pictures and prompts through an older ClipProbe checkout
# (the "before" columns of bench/README.md); only its ranking, contribution, verdicts and
# pruned prompt are read, since it has no presence score.
BEFORE = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--before"), None)
sys.path.insert(0, BEFORE or str(HERE.parent))

from world import World, WorldSpec  # noqa: E402
from world.model import Recipe, recipe_steps, trained_world_clip  # noqa: E402
from world.prompts import make_prompt  # noqa: E402

from clipprobe_ext.encoders.hf import HFClipEncoder  # noqa: E402
from clipprobe_ext.probe import ProbeOptions, analyze  # noqa: E402
from clipprobe_ext.report.reasons import verdict_reason  # noqa: E402

if not BEFORE:
    from signals import signals

    from clipprobe_ext.analysis.calibration import CALIBRATION_FILE, write_calibration
    from clipprobe_ext.analysis.references import forget_banks, reference_banks

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
    cand = (
        {}
        if BEFORE
        else signals(img, emb.numpy().astype(np.float64), banks, encoder.logit_scale, null)
    )
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
            # dropped without the similarity guard: clearly not seen (``absent_z``)
            "clearly": i in getattr(report.pruning, "clearly_absent", ()),
            "reason": verdict_reason(report, v),
            "reason_code": v.why.code,
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
    if "presence" in rows[0]:
        from clipprobe_ext.analysis.calibration import NOT_SEEN

        # Prune needs both: presence under "not seen", and the pruned prompt dropping the
        # phrase (its similarity guard keeps a phrase whose removal costs the prompt more
        # than the tolerance).  Which of the two holds a phrase back:
        out["not_seen"] = {}
        for label in ("present", "absent", "quality", "hidden"):
            sel = [r for r in rows if r["label"] == label]
            under = [r for r in sel if r["presence"] < NOT_SEEN]
            out["not_seen"][label] = {
                "under": len(under) / max(1, len(sel)),
                "clearly": float(np.mean([r.get("clearly", False) for r in under] or [np.nan])),
                "kept_by_guard": float(np.mean([not r["pruned"] for r in under] or [np.nan])),
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


def model_folder(args) -> Path:
    spec = WorldSpec(seed=args.world_seed, image_size=args.image_size)
    recipe = Recipe(
        more_steps=recipe_steps(args.more_steps),
        more_shape_negatives=args.shape_negatives,
        more_single_objects=args.single_objects,
        more_bf16=args.bf16,
    )
    return args.model or trained_world_clip(spec, recipe)


def run(args, folder: Path, eval_seed: int) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    encoder = HFClipEncoder.from_pretrained(str(folder), device="cpu")
    start = time.time()
    banks = null = None
    if not BEFORE:
        forget_banks()  # the calibration is read with the banks: a new fit must be seen
        banks = reference_banks(encoder)
        null = encoder.encode_texts([""])[0].numpy().astype(np.float64)[0]
    eval_spec = WorldSpec(seed=eval_seed, image_size=args.image_size)
    world = World(eval_spec)
    rng = np.random.default_rng(eval_seed)
    options = ProbeOptions(rounds=args.rounds, tolerance=args.tolerance / 100)
    result = {
        "model": str(folder),
        "retrieval_top1": metrics["retrieval_top1"],
        "shape_accuracy": metrics.get("shape_accuracy"),
        "world_seed": args.world_seed,
        "eval_seed": eval_seed,
        "calibration": (
            (banks.calibration.to_dict() if banks.calibration else "none (uncalibrated)")
            if banks
            else f"none (engine {BEFORE})"
        ),
    }
    for mode, count in (("single", args.pictures), ("batch", args.batches)):
        per_prompt = []
        analysis_time = 0.0
        similarities = []  # the whole prompt's mean similarity to its pictures
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
            if report.pruning is not None:
                similarities.append(report.pruning.original_similarity)
            per_prompt.append(phrase_rows(report, prompt, images, encoder, banks, null))
        rows = [r for rs in per_prompt for r in rs]
        res = evaluate(rows, options.threshold)
        for name in res["auroc"]:
            res["auroc"][name]["swap_wins"] = swap_wins(per_prompt, name)
        res["prompts"] = count
        res["prompt_similarity_median"] = float(np.median(similarities or [np.nan]))
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
        f"model {result['model']}: held-out retrieval top-1 {result['retrieval_top1']:.1%}, "
        f"shape accuracy {fmt(result.get('shape_accuracy'), True)}; "
        f"evaluation pictures from world seed {result['eval_seed']}; presence calibration "
        f"{json.dumps(result['calibration'])}"
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
        if "not_seen" in res:
            ns = res["not_seen"]
            print(
                "presence under 'not seen': "
                + ", ".join(f"{fmt(ns[k]['under'], True)} of {k}" for k in ns)
                + "; of those, clearly not seen (the guard yields): "
                + ", ".join(f"{fmt(ns[k]['clearly'], True)} of {k}" for k in ns)
                + "; kept by the pruned prompt's similarity guard: "
                + ", ".join(f"{fmt(ns[k]['kept_by_guard'], True)} of {k}" for k in ns)
            )
        print(
            f"whole-prompt similarity (median over prompts): "
            f"{fmt(res.get('prompt_similarity_median'))}"
        )
        print(f"analysis time per prompt: {res['analysis_seconds_per_prompt'] * 1000:.0f} ms")


def suggest(result: dict, present_share: float = 0.005, clear_share: float = 0.002) -> dict:
    """The presence calibration from a tuning run (never the held-out seed).

    Two pairs of points (``calibration``): for ``cosine_z``, ``not_seen_z`` is the score
    under which ``present_share`` of present phrases fall and ``seen_z`` the score above
    which 5 % of absent phrases rise; for ``phrase_z`` (which tells quality tags, similar
    to every picture, from what is in this one), the same share of present phrases and
    5 % of quality tags.  Presence is the smaller of the two mapped scores, so at most
    twice ``present_share`` of present phrases fall under "not seen" on the tuning seed.
    When a class is so far apart that its cut is below the other, "seen" starts just above.
    ``absent_z`` (clearly not seen: the pruning guard yields) is the ``cosine_z`` under
    which ``clear_share`` of present phrases fall, one in 500.
    """
    rows = result["single"]["rows"]

    def pair(signal: str, negative: str) -> tuple[float, float]:
        present = np.array([r[signal] for r in rows if r["label"] == "present"])
        other = np.array([r[signal] for r in rows if r["label"] == negative])
        not_seen = float(np.quantile(present, present_share))
        return not_seen, max(float(np.quantile(other, 0.95)), not_seen + 0.05)

    not_seen, seen = pair("cosine_z", "absent")
    own_not_seen, own_seen = pair("phrase_z", "quality")
    present = [r["cosine_z"] for r in rows if r["label"] == "present"]
    return {
        "not_seen_z": not_seen,
        "seen_z": seen,
        "phrase_not_seen_z": own_not_seen,
        "phrase_seen_z": own_seen,
        "absent_z": min(float(np.quantile(present, clear_share)), not_seen),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world-seed", type=int, default=0, help="world the model learned")
    parser.add_argument("--eval-seed", type=int, default=1, help="world the pictures come from")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--pictures", type=int, default=300)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--tolerance", type=float, default=1.0, help="pruning guard, percent (default 1)"
    )
    parser.add_argument("--model", type=Path, help="a trained model folder (default: train)")
    parser.add_argument("--more-steps", type=int, nargs="+", help="later training phases")
    parser.add_argument("--single-objects", type=float, default=Recipe.more_single_objects)
    parser.add_argument(
        "--shape-negatives", action="store_true", help="later phases add reshape negatives"
    )
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=Recipe.more_bf16,
        help="later phases under bfloat16 autocast",
    )
    parser.add_argument("--tune-seed", type=int, default=0, help="world the fit comes from")
    parser.add_argument("--refit", action="store_true", help="fit the calibration again")
    parser.add_argument("--tune-json", type=Path, help="also write the tuning run's figures")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--before", metavar="DIR", help="analyse with an older checkout's engine")
    args = parser.parse_args()
    if args.tune_seed == args.eval_seed:
        parser.error("--tune-seed and --eval-seed must differ: the fit is judged on new pictures")
    folder = model_folder(args)
    if not BEFORE and (args.refit or not (folder / CALIBRATION_FILE).exists()):
        tuning = run(args, folder, args.tune_seed)
        fit = suggest(tuning)
        if args.tune_json:
            args.tune_json.write_text(json.dumps(tuning, indent=1))
        print(f"calibration fitted on world seed {args.tune_seed}:", json.dumps(fit))
        write_calibration(
            folder,
            fitted_on=f"bench_advice.py, {args.pictures} pictures of world seed {args.tune_seed}",
            **fit,
        )
    result = run(args, folder, args.eval_seed)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
