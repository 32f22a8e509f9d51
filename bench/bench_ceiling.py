"""How many absent phrases could any fit prune on a zoo member, and how much of that does
the label-free fit reach?  The zoo, from its cached embeddings (numpy only, a minute).

    python bench/bench_ceiling.py [--members NAME ...] [--tails 3.0 2.75 2.5 2.25 2.0]
        [--present-limit 2] [--json out.json]

A phrase is pruned when its presence is under "not seen": ``cosine_z`` under the fit's
``not_seen_z`` or ``phrase_z`` under ``phrase_not_seen_z`` (``calibration.presence``),
and the pruned prompt's guard lets it go, which on the zoo it nearly always does (the
prune verdicts of ``bench_transfer.py`` are within 0.2 points of the shares under "not
seen" computed here).  For every held-out member and domain (seed 1, 300 pictures):

- *ceiling*: the most absent phrases any such pair of cuts puts under "not seen" while at
  most ``--present-limit`` % of present ones fall there, the cuts chosen on the held-out
  pictures' own truth (an upper bound no fit can beat on this model, not a fit);
- *truth*: the fit from the tuning seed's truth (``bench_advice.suggest``);
- *self, tail T*: the label-free fit from the tuning seed's pictures and prompts
  (``fit_from_folder``) with "not seen" ``T`` interquartile ranges under the estimated
  present part's median (the engine's ``TAIL``);
- *tail needed*: where the true present phrases' 0.5 % quantile of ``cosine_z`` lies, in
  interquartile ranges under their median: the tail a fit would need to cut like the
  truth, which the pictures' quartiles cannot tell.

Everything here is a synthetic world of small CLIPs, not a real CLIP.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from transfer_rules import folder_evidence, patched, score_matrices, truth_fit  # noqa: E402
from zoo import cached_pairs  # noqa: E402
from zoo_cache import HELD_OUT, TUNING, load_embeddings  # noqa: E402

from clipprobe_ext.analysis import self_calibration  # noqa: E402
from clipprobe_ext.analysis.self_calibration import CalibrationRefused  # noqa: E402

TAILS = (3.0, 2.75, 2.5, 2.25, 2.0)
#: Cut candidates per score for the ceiling: quantiles of the present phrases' scores.
STEPS = 60


def under(cz: np.ndarray, pz: np.ndarray, not_seen: float, phrase_not_seen: float | None):
    """Which rows fall under "not seen" (either score under its cut)."""
    out = cz < not_seen
    if phrase_not_seen is not None:
        out |= pz < phrase_not_seen
    return out


def ceiling(
    cz: np.ndarray, pz: np.ndarray, present: np.ndarray, absent: np.ndarray, limit: float
) -> tuple[float, float, float | None]:
    """The largest share of ``absent`` rows any pair of cuts puts under "not seen" with at
    most ``limit`` of ``present`` rows there, and the cuts (``None``: no phrase-level cut)."""
    top = min(1.0, 2.5 * limit)
    own_cuts = np.quantile(cz[present], np.linspace(0, top, STEPS))
    phrase_cuts = [None, *np.quantile(pz[present], np.linspace(0, top, STEPS))]
    best = (0.0, -np.inf, None)
    for c in own_cuts:
        for p in phrase_cuts:
            rows = under(cz, pz, c, p)
            if rows[present].mean() <= limit and rows[absent].mean() > best[0]:
                best = (float(rows[absent].mean()), float(c), None if p is None else float(p))
    return best


def rates(fit, cz, pz, present, absent) -> dict:
    rows = under(cz, pz, fit.not_seen_z, fit.phrase_not_seen_z)
    return {"absent": float(rows[absent].mean()), "present": float(rows[present].mean())}


def tail_needed(cz: np.ndarray, present: np.ndarray) -> float:
    q005, q25, q50, q75 = np.quantile(cz[present], [0.005, 0.25, 0.5, 0.75])
    return float((q50 - q005) / (q75 - q25))


def measure(name: str, domain: str, tails, limit: float) -> dict:
    tuning, held_out = (load_embeddings(name, domain, s) for s in (TUNING, HELD_OUT))
    _, cz_all, pz_all = score_matrices(held_out)
    rows = held_out.rows
    cz, pz = cz_all[rows.picture, rows.text], pz_all[rows.picture, rows.text]
    present, absent = rows.label == "present", rows.label == "absent"
    best, cut, phrase_cut = ceiling(cz, pz, present, absent, limit)
    out = {
        "member": name,
        "domain": domain,
        "ceiling": {"absent": best, "not_seen_z": cut, "phrase_not_seen_z": phrase_cut},
        "truth": rates(truth_fit(tuning, "truth"), cz, pz, present, absent),
        "tail_needed": tail_needed(cz, present),
        "self": {},
    }
    evidence = folder_evidence(tuning)
    for tail in tails:
        with patched(self_calibration, "TAIL", tail):
            try:
                fit = self_calibration.fit_from_folder(evidence).fit
            except CalibrationRefused:
                out["self"][str(tail)] = None
                continue
        out["self"][str(tail)] = rates(fit, cz, pz, present, absent)
    return out


def percent(pair: dict | None) -> str:
    if pair is None:
        return "refused"
    return f"{100 * pair['absent']:.1f} / {100 * pair['present']:.1f}"


def print_table(results: list[dict], tails, limit: float) -> None:
    head = ["member, domain", f"ceiling (≤ {100 * limit:g} %)", "truth"]
    head += [f"self, tail {t:g}" for t in tails] + ["tail needed"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        cells = [f"{r['member']} {r['domain']}", f"{100 * r['ceiling']['absent']:.1f}"]
        cells += [percent(r["truth"])] + [percent(r["self"][str(t)]) for t in tails]
        print("| " + " | ".join(cells + [f"{r['tail_needed']:.2f}"]) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", nargs="+", help="zoo members (default: every cached one)")
    parser.add_argument("--tails", nargs="+", type=float, default=list(TAILS))
    parser.add_argument("--present-limit", type=float, default=2.0, help="percent")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    limit = args.present_limit / 100
    results = [
        measure(name, domain, args.tails, limit) for name, domain in cached_pairs(args.members)
    ]
    print_table(results, args.tails, limit)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
