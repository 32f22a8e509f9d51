"""Heatmaps across the zoo: which method points at the right object on every model?

For each trained zoo member (``zoo.py``), on held-out scenes of the domain it was trained
on (both for a member trained on both), every visible object's phrase gets a map per
method, and the pointing game is scored as in ``bench_heatmaps.py`` (hit: the hottest
patch within half a patch of the object's pixels).  Besides each method as it is, its
*contrast* version: the phrase's map less the mean of the other phrases' maps of the same
picture (each normalised to its peak), which needs no model pass; a phrase whose map
peaks where every phrase's map peaks then points elsewhere.

Also counted per method: how often two phrases' maps of one picture peak on the same patch
(the heatmap view's "not trustworthy" sign), and how often such a map misses.

    python bench/bench_heatmaps_zoo.py [--scenes 150] [--members a,b] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_heatmaps import random_point_hit, scene_runs, score_map  # noqa: E402
from world import World  # noqa: E402
from world.scenes import domain_spec  # noqa: E402
from zoo import is_trained, members  # noqa: E402

from clipprobe_ext.encoders import load_encoder  # noqa: E402
from clipprobe_ext.heatmaps.trust import shared_peaks  # noqa: E402

METHODS = ("chefer", "chefer-2", "chefer-3", "chefer-all", "grad-eclip")


def _normalised(grid: np.ndarray) -> np.ndarray:
    grid = np.asarray(grid, dtype=np.float32)
    peak = float(grid.max()) if grid.size else 0.0
    return grid / peak if peak > 0 else np.zeros_like(grid)


def contrasted(grids: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each map less the mean of the others (all normalised to their peak), clipped at 0
    and normalised again; a single map is returned as it is."""
    normal = [_normalised(g) for g in grids]
    if len(normal) < 2:
        return normal
    total = np.sum(normal, axis=0)
    out = []
    for grid in normal:
        others = (total - grid) / (len(normal) - 1)
        out.append(_normalised(np.clip(grid - others, 0, None)))
    return out


def member_accuracy(member, scenes: int, methods=METHODS) -> dict:
    encoder = load_encoder(member.encoder_name, device="cpu", allow_download=False)
    domains = ("plain", "busy") if member.trained_on == "both" else (member.trained_on,)
    rows: dict[str, list[tuple[bool, bool]]] = {}
    chance = []
    for domain in domains:
        world = World(domain_spec(domain, member.world_seed))
        for objects, run in scene_runs(encoder, world, scenes):
            phrases = [o.phrase for o in objects]
            chance += [random_point_hit(o.mask, run.kept.grid) for o in objects]
            for method in methods:
                grids = [h.grid for h in run.maps(phrases, method)]
                shared = shared_peaks(grids)
                for name, maps in ((method, grids), (f"{method} contrast", contrasted(grids))):
                    for k, (obj, grid) in enumerate(zip(objects, maps)):
                        hit, _ = score_map(grid, obj.mask)
                        rows.setdefault(name, []).append((hit, shared[k], len(objects) > 1))
    out = {"member": member.name, "domains": list(domains), "random point": float(np.mean(chance))}
    for name, values in rows.items():
        hits = np.array([v[0] for v in values])
        shared = np.array([v[1] for v in values])
        multi = np.array([v[2] for v in values])
        out[name] = {
            "objects": len(values),
            "pointing": float(hits.mean()),
            "pointing_multi": float(hits[multi].mean()) if multi.any() else None,
            "shared_peak": float(shared.mean()),
            "miss_when_shared": float(1 - hits[shared].mean()) if shared.any() else None,
            "miss_otherwise": float(1 - hits[~shared].mean()) if (~shared).any() else None,
        }
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenes", type=int, default=150, help="held-out scenes per domain")
    parser.add_argument("--members", help="comma-separated zoo members (default: the trained)")
    parser.add_argument("--methods", help=f"comma-separated (default: {','.join(METHODS)})")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    chosen = [m for m in members() if is_trained(m)]
    if args.members:
        wanted = set(args.members.split(","))
        chosen = [m for m in chosen if m.name in wanted]
    results = []
    for member in chosen:
        methods = tuple(args.methods.split(",")) if args.methods else METHODS
        r = member_accuracy(member, args.scenes, methods)
        results.append(r)
        print(f"\n{member.name} ({', '.join(r['domains'])}; random point {r['random point']:.1%})")
        for name, v in r.items():
            if isinstance(v, dict):
                multi = "-" if v["pointing_multi"] is None else f"{v['pointing_multi']:.1%}"
                print(
                    f"  {name:<22} {v['objects']:>5} objects  pointing {v['pointing']:.1%}"
                    f"  (2+ obj {multi})  shared peak {v['shared_peak']:.1%}"
                    f"  misses: shared {_pct(v['miss_when_shared'])}, else {_pct(v['miss_otherwise'])}"
                )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
