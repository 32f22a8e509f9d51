"""Can CLIP judge a position or a count?  What pruning such phrases would do without the
"cannot judge" rule, on the synthetic world.

    python bench/bench_judgeable.py [--members plain-s0 ...] [--pictures 150]
        [--rounds 5] [--json out.json] [--threads 1]

Pictures with a claim whose truth is known (``world.relations``): two objects and
"a red circle left of a blue square" (or "above"), or two or three copies of one object
and "two red circles".  For each, the claim that holds and its wrong version (the swap:
the same words; the other number).

1. Separation: the plain cosine of the picture with the true claim against the wrong
   one: per picture (the share where the true claim scores higher: a paired AUROC) and
   pooled over pictures (AUROC).  For contrast, the same for the objects the picture
   holds ("a red circle") against objects it does not.
2. Pruning: the real ``probe.analyze`` of each picture with a prompt of the claim, the
   picture's other objects and one object it does not hold, under the member's fit,
   with the rule switched off (``judgeable.unjudgeable`` answering "judgeable" in the
   engine) and on.  A wrong prune is the verdict "prune" for a claim that holds; the
   same for the wrong claim is how often a false claim would be pruned (rightly).

The fits: the member's fit from the world's truth ("truth") and its label-free fit from
its own prompted pictures ("self"), as ``bench_transfer.py`` makes them from the tuning
seed.  Zoo members are read from ~/.cache/clipprobe-bench (``zoo.py``); nothing is trained.
Everything here is a synthetic world of small CLIPs, not a real CLIP.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_transfer import load_member_encoder, tuning_embeddings  # noqa: E402
from transfer_rules import Rule, applied, patched, self_fit, truth_fit  # noqa: E402
from world.relations import Claim, count_scene, position_scene  # noqa: E402
from world.scenes import World  # noqa: E402
from zoo import is_trained, member  # noqa: E402

from clipprobe_ext import probe  # noqa: E402
from clipprobe_ext.analysis import judgeable  # noqa: E402
from clipprobe_ext.analysis import verdict as verdict_module  # noqa: E402
from clipprobe_ext.analysis.self_calibration import CalibrationRefused  # noqa: E402
from clipprobe_ext.probe import ProbeOptions  # noqa: E402

DOMAIN = "plain"
KINDS = ("position", "count")


def claims(world: World, kind: str, count: int) -> list[Claim]:
    make = position_scene if kind == "position" else count_scene
    found: list[Claim] = []
    index = 0
    while len(found) < count and index < 20 * count:
        claim = make(world, index)
        index += 1
        if claim is not None:
            found.append(claim)
    for claim in found:  # the rule must flag every claim measured here
        assert judgeable.unjudgeable(claim.true) and judgeable.unjudgeable(claim.wrong), claim
    return found


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties half (Mann-Whitney)."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if not len(positive) or not len(negative):
        return float("nan")
    above = (positive[:, None] > negative[None, :]).mean()
    ties = (positive[:, None] == negative[None, :]).mean()
    return float(above + 0.5 * ties)


def separation(encoder, items: list[Claim], world: World) -> dict:
    """Cosines of each picture with its true and wrong claim, and with objects present
    and absent (the contrast: what the model can judge)."""
    images = encoder.encode_images([c.image for c in items]).numpy().astype(np.float64)
    vocabulary = world.spec.object_phrases()
    texts = sorted({t for c in items for t in (c.true, c.wrong)} | set(vocabulary))
    where = {t: k for k, t in enumerate(texts)}
    embedded = encoder.encode_texts(texts)[0].numpy().astype(np.float64)
    cos = images @ embedded.T
    true = np.array([cos[n, where[c.true]] for n, c in enumerate(items)])
    wrong = np.array([cos[n, where[c.wrong]] for n, c in enumerate(items)])
    present, absent = [], []
    for n, c in enumerate(items):
        held = set(c.others) | _objects_of(c)
        for phrase in vocabulary:
            (present if phrase in held else absent).append(cos[n, where[phrase]])
    return {
        "pictures": len(items),
        "paired_auroc": float(np.mean((true > wrong) + 0.5 * (true == wrong))),
        "pooled_auroc": auroc(true, wrong),
        "objects_auroc": auroc(np.array(present), np.array(absent)),
    }


def _objects_of(claim: Claim) -> set[str]:
    """The objects a claim names that the picture holds (position claims: both)."""
    if claim.kind != "position":
        return set()
    for word in (" left of ", " above "):
        if word in claim.true:
            return set(claim.true.split(word))
    return set()


@contextlib.contextmanager
def rule_off():
    """The engine as if the rule did not exist: every phrase is judgeable."""
    with contextlib.ExitStack() as stack:
        for module in (probe, verdict_module):
            stack.enter_context(patched(module, "unjudgeable", lambda text: None))
        yield


def prompt_for(claim: Claim, text: str, world: World, rng) -> str:
    """The claim (``text``), the picture's other objects, one object it does not hold."""
    held = set(claim.others) | _objects_of(claim)
    absent = [p for p in world.spec.object_phrases() if p not in held]
    phrases = [text, *claim.others, str(rng.choice(absent))]
    rng.shuffle(phrases)
    return ", ".join(phrases)


def verdicts_of(encoder, items: list[Claim], which: str, options, world: World) -> dict:
    """The verdict of the claim (``which``: "true" or "wrong") in each picture's analysis."""
    rng = np.random.default_rng(11)
    counts: dict[str, int] = {}
    verdicts: list[str] = []
    pruned_prompt = 0
    for claim in items:
        text = claim.true if which == "true" else claim.wrong
        report = probe.analyze([claim.image], prompt_for(claim, text, world, rng), encoder, options)
        [found] = [v for v in report.verdicts if v.text == text]
        counts[found.verdict] = counts.get(found.verdict, 0) + 1
        verdicts.append(found.verdict)
        pruned_prompt += bool(found.pruned)
    n = len(items)
    return {
        "verdicts": verdicts,
        "share": {k: v / n for k, v in sorted(counts.items())},
        "prune": counts.get("prune", 0) / n,
        "dropped_from_pruned_prompt": pruned_prompt / n,
    }


def run(args, log=print) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    started = time.time()
    options = ProbeOptions(rounds=args.rounds)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "pictures": args.pictures,
        "rounds": args.rounds,
        "members": {},
    }
    for name in args.members:
        m = member(name)
        if not is_trained(m):
            log(f"{name}: not trained, left out (this script trains nothing)")
            continue
        world = World(m.spec)
        items = {kind: claims(world, kind, args.pictures) for kind in KINDS}
        encoder = load_member_encoder(m)
        embeddings = tuning_embeddings(m, DOMAIN, lambda _, e=encoder: e)
        fits = {"truth": truth_fit(embeddings, f"{name}: fitted on the world's truth")}
        try:
            fits["self"] = self_fit(embeddings)
        except CalibrationRefused as exc:
            log(f"{name}: no label-free fit ({exc})")
        out = {"separation": {}, "verdicts": {}}
        for kind in KINDS:
            out["separation"][kind] = separation(encoder, items[kind], world)
            log(f"{name} {kind}: {out['separation'][kind]}")
        for fit_name, fit in fits.items():
            with applied(Rule(fit_name, fit=fit)):
                for kind in KINDS:
                    start = time.time()
                    with rule_off():
                        without = {w: verdicts_of(encoder, items[kind], w, options, world)
                                   for w in ("true", "wrong")}  # fmt: skip
                    with_rule = verdicts_of(encoder, items[kind], "true", options, world)
                    pairs = zip(without["true"].pop("verdicts"), without["wrong"].pop("verdicts"))
                    with_rule.pop("verdicts")
                    out["verdicts"][f"{fit_name}/{kind}"] = {
                        "without_rule": without,
                        # the share of pictures where the true and the wrong claim get the
                        # same verdict: a verdict that cannot tell them apart says nothing
                        "same_verdict_true_and_wrong": float(np.mean([a == b for a, b in pairs])),
                        "with_rule": with_rule,
                    }
                    log(
                        f"{name} {fit_name} {kind}: without the rule a true claim is pruned in "
                        f"{100 * without['true']['prune']:.1f} %, a wrong one in "
                        f"{100 * without['wrong']['prune']:.1f} %; with the rule "
                        f"{100 * with_rule['prune']:.1f} % ({time.time() - start:.0f} s)"
                    )
        result["members"][name] = out
    result["seconds"] = round(time.time() - started, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--members", nargs="+", default=["plain-s0", "plain-weak", "plain-600", "both-openai"]
    )
    parser.add_argument("--pictures", type=int, default=150, help="pictures per kind of claim")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
