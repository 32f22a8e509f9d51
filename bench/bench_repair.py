"""The cost of a repair against one regeneration: a bring-in (N variants) and a
confirmation over N seeds, with the tests' stand-in generator and small trained CLIP.

One regeneration = one generated picture measured against the analysis
(``compare.compare``).  A bring-in = ``analysis.bring_in.bring_in`` for one phrase (its
variants generated and compared).  A confirmation over N seeds = the regeneration, then
both prompts generated with the N seeds, each picture's presence measured
(``compare.phrase_presence``) and the pairs compared (``compare_over_seeds``), as
``webui.regenerate.run.confirm_over_seeds`` does.  The stand-in draws a picture in well
under a millisecond, so the ratios here are ClipProbe's own measuring cost; with Stable
Diffusion the generations dominate and the ratio tends to the count of generations.
Every figure is measured in this one run; compare ratios, not seconds.

    python bench/bench_repair.py [--repeat 3] [--seeds 4 8] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from stand_in_generator import fit_stand_in_model, stand_in  # noqa: E402
from trained_clip import save_trained_clip  # noqa: E402

from clipprobe_ext.analysis.bring_in import bring_in  # noqa: E402
from clipprobe_ext.analysis.seeds import compare_over_seeds  # noqa: E402
from clipprobe_ext.compare import compare, phrase_presence  # noqa: E402
from clipprobe_ext.encoders.hf import HFClipEncoder  # noqa: E402
from clipprobe_ext.probe import ProbeOptions, analyze  # noqa: E402

SEED = 4
PROMPT = "masterpiece, a blue square, best quality, a red circle"
CANDIDATE = "masterpiece, best quality, a red circle"


def timed(fn, repeat: int) -> float:
    """Median seconds of ``repeat`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with TemporaryDirectory() as tmp:
        trained = save_trained_clip(Path(tmp) / "trained")
        folder, _ = fit_stand_in_model(trained, Path(tmp) / "fitted", SEED)
        encoder = HFClipEncoder.from_pretrained(str(folder), device="cpu")
        original = stand_in(PROMPT, SEED)
        report = analyze([original], PROMPT, encoder, ProbeOptions(contribution=False))
        texts = [p.text for p in report.measurable]

        def one() -> None:
            compare(report, original, stand_in(CANDIDATE, SEED), CANDIDATE, encoder)

        variants: list[int] = []

        def bring() -> None:
            done = bring_in(
                report, original, ["a blue square"], lambda p: stand_in(p, SEED), encoder
            )
            variants[:] = [len(done.results)]

        def confirm(n: int):
            def run() -> None:
                one()
                before = [stand_in(PROMPT, SEED + k) for k in range(n)]
                after = [stand_in(CANDIDATE, SEED + k) for k in range(n)]
                compare_over_seeds(
                    texts,
                    phrase_presence(report, before, encoder),
                    phrase_presence(report, after, encoder),
                )

            return run

        t_one = timed(one, args.repeat)
        t_bring = timed(bring, args.repeat)
        rows = {
            "one regeneration": {"seconds": t_one, "ratio": 1.0, "generations": 1},
            f"bring-in ({variants[0]} variants)": {
                "seconds": t_bring,
                "ratio": t_bring / t_one,
                "generations": variants[0],
            },
        }
        for n in args.seeds:
            t = timed(confirm(n), args.repeat)
            rows[f"confirmation over {n} seeds"] = {
                "seconds": t,
                "ratio": t / t_one,
                "generations": 2 * n,
            }
    print(f"{'':32} {'generations':>11} {'seconds':>9} {'x one':>7}")
    for name, row in rows.items():
        print(f"{name:32} {row['generations']:>11} {row['seconds']:>9.3f} {row['ratio']:>7.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
