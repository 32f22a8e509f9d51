"""Is a calibration from a small folder safe?  The zoo's tuning pictures, drawn smaller.

    python bench/bench_small_folders.py [--members NAME ...] [--sizes 40 60 100 150 300]
        [--draws 10] [--before] [--json out.json]

For every zoo member and domain, ``--draws`` random folders of each size are drawn from
the 300 tuning pictures (seed 0) with their prompts and calibrated with the engine's
``fit_from_folder``; each fit that is not refused is scored on the 300 held-out pictures
(seed 1) as ``bench_ceiling.py`` scores it: the share of present and absent phrases under
"not seen".  ``--before`` measures the estimator without its resamples (each cut from the
folder once, the separation from the folder once) and with the former 40-picture minimum.
Everything here is a synthetic world of small CLIPs, not a real CLIP.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_ceiling import under  # noqa: E402
from transfer_rules import folder_evidence, patched, score_matrices  # noqa: E402
from zoo import cached_pairs  # noqa: E402
from zoo_cache import HELD_OUT, TUNING, load_embeddings  # noqa: E402

from clipprobe_ext.analysis import self_calibration  # noqa: E402
from clipprobe_ext.analysis.self_calibration import CalibrationRefused  # noqa: E402

SIZES = (40, 60, 100, 150, 300)


def estimator(before: bool):
    """The engine's estimator, or the one before resampling (``--before``)."""
    stack = contextlib.ExitStack()
    if before:
        stack.enter_context(patched(self_calibration, "RESAMPLES", 0))
        stack.enter_context(patched(self_calibration, "MIN_PICTURES", 40))
    return stack


def measure(name: str, domain: str, sizes, draws: int, before: bool, seed: int = 0) -> dict:
    evidence = folder_evidence(load_embeddings(name, domain, TUNING))
    held_out = load_embeddings(name, domain, HELD_OUT)
    _, cz_all, pz_all = score_matrices(held_out)
    rows = held_out.rows
    cz, pz = cz_all[rows.picture, rows.text], pz_all[rows.picture, rows.text]
    present, absent = rows.label == "present", rows.label == "absent"
    rng = np.random.default_rng(seed)
    total = len(evidence.asked)
    out = {"member": name, "domain": domain, "sizes": {}}
    for size in sizes:
        runs = 1 if size >= total else draws
        fits, refused = [], 0
        for _ in range(runs):
            picked = rng.choice(total, min(size, total), replace=False)
            try:
                with estimator(before):
                    fit = self_calibration.fit_from_folder(evidence.of_pictures(picked)).fit
            except CalibrationRefused:
                refused += 1
                continue
            cut = under(cz, pz, fit.not_seen_z, fit.phrase_not_seen_z)
            fits.append((float(cut[present].mean()), float(cut[absent].mean())))
        out["sizes"][str(size)] = {"draws": runs, "refused": refused, "fits": fits}
    return out


def cell(entry: dict) -> str:
    fits = np.array(entry["fits"]) * 100
    head = f"{entry['refused']}/{entry['draws']} refused"
    if not len(fits):
        return head
    return f"{head}; present max {fits[:, 0].max():.1f}, absent median {np.median(fits[:, 1]):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", nargs="+")
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--before", action="store_true", help="no resamples, 40-picture minimum")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    print("| member, domain | " + " | ".join(f"{s} pictures" for s in args.sizes) + " |")
    print("|" + "---|" * (len(args.sizes) + 1))
    for name, domain in cached_pairs(args.members):
        r = measure(name, domain, args.sizes, args.draws, args.before)
        results.append(r)
        cells = [cell(r["sizes"][str(s)]) for s in args.sizes]
        print(f"| {name} {domain} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
