"""A zoo of small CLIPs trained on the world, and their embeddings cached for experiments.

    cd bench && python zoo.py train     # trains every missing member, one after the other
    python zoo.py status                 # each member's state, training time and metrics
    python zoo.py embed                  # caches what the experiments read (see load_embeddings)

A calibration fitted on one model does not carry over to another (bench/README.md).  To
choose and check rules that must hold on any model, the zoo's members differ the way real
CLIPs do: image tower width and depth, patch and input size, training length and seed,
and the pictures they learnt from (the plain world, the busy one, or both).  One member
is saved in the openai ``clip`` format, one is read in float16.  Each is a world model
(``world.model.trained_world_clip``: cached in ~/.cache/clipprobe-bench, resumable), so
everything here is a synthetic world, not a real CLIP.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from world.model import CACHE, Recipe, model_folder, trained_world_clip  # noqa: E402
from world.scenes import WorldSpec, domain_spec  # noqa: E402

ZOO = CACHE / "zoo"
TRAIN_LOG = ZOO / "train.log"
THREADS = 2
DOMAINS = ("plain", "busy")


def _recipe(**changes) -> Recipe:
    """A one-phase recipe (the world model's later phases are its own)."""
    return Recipe(more_steps=0, more_bf16=False, **changes)


@dataclass(frozen=True)
class Member:
    name: str
    trained_on: str  # "plain", "busy" or "both"
    recipe: Recipe
    form: str = "hf"  # "hf": a transformers folder; "openai": also an openai clip .pt
    dtype: str = "float32"  # what ClipProbe reads it in
    role: str = ""  # why it is in the zoo
    world_seed: int = 0
    spec: WorldSpec = field(init=False)

    def __post_init__(self) -> None:
        domain = "busy" if self.trained_on == "busy" else "plain"
        object.__setattr__(self, "spec", domain_spec(domain, self.world_seed))

    @property
    def folder(self) -> Path:
        """The transformers model folder (the world model's cache)."""
        return model_folder(self.spec, self.recipe)


# Step counts fit about 15 minutes on two free cores of this machine's CPU (measured step
# times: 0.42 s for width 128 with 3 layers at 64 px, 0.23 s for width 64; bfloat16
# autocast was 10x slower on this CPU, which has no avx512_bf16).
MEMBERS = (
    Member(
        "plain-weak",
        "plain",
        _recipe(steps=600),
        role="weak: a few minutes of training",
    ),
    Member(
        "both-openai",
        "both",
        _recipe(steps=1500, text_width=128, openai_heads=True, mix_domain="busy"),
        form="openai",
        role="both domains; saved in the openai clip format (heads = width // 64)",
    ),
    Member(
        "busy-p16",
        "busy",
        _recipe(steps=1500, input_size=128, patch=16, vision_layers=4, train_scenes=10000),
        role="busy only; 128 px input with patch 16",
    ),
    Member(
        "plain-s0",
        "plain",
        _recipe(steps=2000),
        role="stronger; the pair of plain-s1 (seed) and plain-w64 (width)",
    ),
    Member(
        "busy-deep",
        "busy",
        _recipe(steps=1100, vision_layers=6),
        dtype="float16",
        role="busy only; a deeper image tower; read in float16",
    ),
    Member(
        "plain-w64",
        "plain",
        _recipe(steps=2000, width=64),
        role="plain-s0 with an image tower half as wide",
    ),
    Member(
        "plain-s1",
        "plain",
        _recipe(steps=2000, seed=1),
        role="plain-s0 with another seed",
    ),
)


def members() -> list[Member]:
    """The zoo, in training order."""
    return list(MEMBERS)


def member(name: str) -> Member:
    for m in MEMBERS:
        if m.name == name:
            return m
    raise KeyError(f"no zoo member {name!r}; the zoo: {', '.join(m.name for m in MEMBERS)}")


def is_trained(m: Member) -> bool:
    return (m.folder / "metrics.json").exists()


# -- commands ----------------------------------------------------------------------------


def logger(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        print(line, flush=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")

    return log


def train_all(names: list[str] | None = None) -> None:
    """Train every missing member (or the named ones), one after the other."""
    import torch

    torch.set_num_threads(THREADS)
    log = logger(TRAIN_LOG)
    for m in members():
        if names and m.name not in names:
            continue
        if is_trained(m):
            log(f"{m.name}: trained ({m.folder})")
            continue
        log(f"{m.name}: training ({m.folder})")
        trained_world_clip(m.spec, m.recipe, log=lambda msg, m=m: log(f"{m.name}: {msg}"))
        metrics = json.loads((m.folder / "metrics.json").read_text())
        log(f"{m.name}: done in {metrics['train_seconds']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train every missing member")
    p.add_argument("names", nargs="*", help="only these members")
    args = parser.parse_args()
    if args.command == "train":
        train_all(args.names)


if __name__ == "__main__":
    main()
