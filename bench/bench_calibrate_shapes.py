"""The label-free fit against the truth's on the tests' four-shape CLIP, folder by folder.

    python bench/bench_calibrate_shapes.py [--folders 9] [--pictures 240]

The folders of ``tests/test_calibrate.py`` (one drawn shape per picture; the prompt asks
for it, sometimes for shapes that are not drawn, and sometimes for quality tags the model
never learnt), each with other seeds, calibrated through ``calibrate_on_folders`` as
``clipprobe calibrate`` does, and compared with the fit the labels give (the test's
``truth_fit``, ``bench_advice.suggest``'s rule).  The figures in docs/calibration.md
("What the tests measured") come from here.  A tiny synthetic model, not a real CLIP.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import fitless_copy  # noqa: E402
from test_audit import save_png  # noqa: E402
from test_calibrate import encoder_of, truth_fit  # noqa: E402
from trained_clip import save_trained_clip, shapes_folder  # noqa: E402

from clipprobe_ext.analysis.calibration import NOT_SEEN, SEEN  # noqa: E402
from clipprobe_ext.analysis.references import forget_banks  # noqa: E402
from clipprobe_ext.audit.calibrate import calibrate_on_folders  # noqa: E402
from clipprobe_ext.audit.pipeline import AuditOptions  # noqa: E402


def measure(model: Path, work: Path, index: int, pictures: int) -> dict:
    forget_banks()
    folder = work / f"folder-{index}"
    folder.mkdir()
    kinds = shapes_folder(
        folder, pictures, seed=7 + index, picture_seed=1000 + pictures * index, save=save_png
    )
    options = AuditOptions(cache=str(work / f"store-{index}.sqlite3"))
    run = calibrate_on_folders([folder], encoder_of(model), options, save=False)
    truth, pairs = truth_fit(run, kinds)
    fit = run.fit
    share = pairs["present"].shape[1] / sum(p.shape[1] for p in pairs.values())
    shapes_z = np.concatenate([pairs["present"][0], pairs["absent"][0]])
    present, absent = fit.presence(*pairs["present"]), fit.presence(*pairs["absent"])
    return {
        "share seen, error": abs((1 - run.folder.absent_share) - share),
        "seen_z - truth's": fit.seen_z - truth.seen_z,
        "not_seen_z - truth's": fit.not_seen_z - truth.not_seen_z,
        "phrase_not_seen_z - truth's": fit.phrase_not_seen_z - truth.phrase_not_seen_z,
        "'seen' cut decides as the truth's": np.mean(
            (shapes_z >= fit.seen_z) == (shapes_z >= truth.seen_z)
        ),
        "'not seen' cut decides as the truth's": np.mean(
            (shapes_z < fit.not_seen_z) == (shapes_z < truth.not_seen_z)
        ),
        "absent shapes seen": np.mean(absent >= SEEN),
        "present shapes not seen": np.mean(present < NOT_SEEN),
        "absent shapes not seen": np.mean(absent < NOT_SEEN),
        "absent shapes not seen, truth's fit": np.mean(truth.presence(*pairs["absent"]) < NOT_SEEN),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folders", type=int, default=9)
    parser.add_argument("--pictures", type=int, default=240)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="clipprobe-calibrate-shapes-"))
    model = fitless_copy(save_trained_clip(work / "trained"), work / "model")
    rows = [measure(model, work, i, args.pictures) for i in range(args.folders)]
    print(f"{args.folders} folders of {args.pictures} pictures; min / max over the folders:")
    for key in rows[0]:
        values = [float(r[key]) for r in rows]
        print(f"  {key}: {min(values):.3f} / {max(values):.3f}")


if __name__ == "__main__":
    main()
