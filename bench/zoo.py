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
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Waiting threads sleep instead of spinning: on a machine shared with other jobs a spinning
# OpenMP thread burns the time slices its partner needs (a step of plain-weak took 7.5 s
# spinning, 2.6 s waiting passively, at a load of 7 on 2 cores).
# Set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from world.model import Recipe, model_folder, trained_world_clip  # noqa: E402
from world.scenes import WorldSpec, domain_spec  # noqa: E402
from zoo_cache import (  # noqa: E402
    EMBEDDINGS,
    HELD_OUT,
    SEEDS,
    ZOO,
    ZooEmbeddings,
    embedding_file,
    encode,
    load_embeddings,
    picture_folder,
    prompted_pictures,
    save_embeddings,
    truth_arrays,
    write_pictures,
)

__all__ = ["Member", "ZooEmbeddings", "load_embeddings", "member", "members"]

TRAIN_LOG = ZOO / "train.log"
METRICS = ZOO / "metrics"
OPENAI = ZOO / "openai"
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

    @property
    def openai_file(self) -> Path:
        return OPENAI / f"{self.folder.name}.pt"

    @property
    def encoder_name(self) -> str:
        """What ``load_encoder`` is given for this member."""
        return f"openai-clip:{self.openai_file}" if self.form == "openai" else str(self.folder)

    def architecture(self) -> str:
        r = self.recipe
        side = r.input_size or self.spec.image_size
        return (
            f"ViT {side} px / patch {r.patch}, width {r.width} x {r.vision_layers}; "
            f"text {r.text_width} x {r.text_layers}"
        )


# Step counts fit at most about 20 minutes on two free cores of this machine's CPU
# (measured step times: 0.42 s for width 128 with 3 layers at 64 px, 0.23 s for width 64;
# bfloat16 autocast was 10x slower on this CPU, which has no avx512_bf16).  600 steps
# reached 37.8 % retrieval, under the weak member's 60-75 %: plain-600 stays as the
# weakest, plain-weak trains twice as long.
MEMBERS = (
    Member(
        "plain-600",
        "plain",
        _recipe(steps=600),
        role="weakest: 600 steps (about 4 minutes)",
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
        "plain-weak",
        "plain",
        _recipe(steps=1200),
        role="weak: a few minutes of training",
    ),
    Member(
        "plain-s0",
        "plain",
        _recipe(steps=2500),
        role="stronger: plain-weak trained twice as long",
    ),
    Member(
        "busy-deep",
        "busy",
        _recipe(steps=1100, input_size=64, vision_layers=6),
        dtype="float16",
        role="busy only; a deeper image tower; read in float16",
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


def cached_pairs(names: list[str] | None = None) -> list[tuple[str, str]]:
    """(member, domain) for every trained member (or the named ones) whose embeddings of
    both seeds are cached, in training order; each pair left out is named on stderr."""
    pairs = []
    for m in members():
        if names and m.name not in names:
            continue
        for domain in DOMAINS:
            if is_trained(m) and all(embedding_file(m.name, domain, s).exists() for s in SEEDS):
                pairs.append((m.name, domain))
            else:
                print(f"{m.name} {domain}: not cached (python bench/zoo.py embed)", file=sys.stderr)
    return pairs


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


def ensure_openai(m: Member, log=print) -> None:
    """The member's openai clip file, converted once and checked against its folder."""
    if m.form != "openai" or m.openai_file.exists() or not is_trained(m):
        return
    from world import World
    from zoo_openai import compare, save_openai

    save_openai(m.folder, m.openai_file)
    images = [World(domain_spec(d)).scene(i, "eval").image for d in DOMAINS for i in range(32)]
    texts = [p.text for p in prompted_pictures("plain", 0, 8)[0].phrases]
    texts += ["masterpiece, a red circle, (a blue star:1.3), grainy", "a photo", ""]
    check = compare(m.folder, m.openai_file, images, texts)
    (m.openai_file.with_suffix(".check.json")).write_text(json.dumps(check, indent=1))
    log(f"{m.name}: openai clip file {m.openai_file}; the same embeddings? {json.dumps(check)}")


def domain_metrics(m: Member) -> dict:
    """Held-out retrieval top-1 (500 pictures) and shape accuracy on each domain's world
    (seed 0, split "eval", never trained on), from the transformers weights; cached."""
    path = METRICS / f"{m.folder.name}.json"
    if path.exists():
        return json.loads(path.read_text())
    from transformers import CLIPModel, CLIPProcessor
    from world import World
    from world.model import retrieval, shape_accuracy

    model = CLIPModel.from_pretrained(m.folder).eval()  # retrieval() runs under no_grad
    processor = CLIPProcessor.from_pretrained(m.folder)
    out = {}
    for domain in DOMAINS:
        world = World(domain_spec(domain, 0))
        out[domain] = {
            "retrieval_top1": retrieval(model, processor, world, 500),
            "shape_accuracy": shape_accuracy(model, processor, world),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    return out


def embed_all(names: list[str] | None = None, log=print) -> None:
    """Fill the embedding cache of every trained member (see ``zoo_cache``)."""
    import torch

    from clipprobe_ext.encoders import load_encoder

    torch.set_num_threads(THREADS)
    pictures = {}
    for m in members():
        if (names and m.name not in names) or not is_trained(m):
            continue
        ensure_openai(m, log)
        missing = [
            (d, s) for d in DOMAINS for s in SEEDS if not embedding_file(m.name, d, s).exists()
        ]
        if not missing:
            continue
        metrics = domain_metrics(m)
        trained = json.loads((m.folder / "metrics.json").read_text())
        metrics["train_seconds"] = trained["train_seconds"]
        encoder = load_encoder(m.encoder_name, device="cpu", dtype=getattr(torch, m.dtype))
        for domain, seed in missing:
            if (domain, seed) not in pictures:
                pictures[domain, seed] = prompted_pictures(domain, seed)
                if seed == HELD_OUT:
                    write_pictures(domain, seed, pictures[domain, seed])
            start = time.time()
            arrays = encode(encoder, pictures[domain, seed])
            arrays.update(truth_arrays(pictures[domain, seed], arrays["texts"]))
            meta = {
                "member": m.name,
                "domain": domain,
                "seed": seed,
                "encoder": m.encoder_name,
                "dtype": m.dtype,
                "model_folder": str(m.folder),
                "trained_on": m.trained_on,
                "architecture": m.architecture(),
                "recipe": asdict(m.recipe),
                "metrics": metrics,
                "picture_folder": str(picture_folder(domain)) if seed == HELD_OUT else None,
            }
            save_embeddings(embedding_file(m.name, domain, seed), arrays, meta)
            log(f"{m.name}: {domain} seed {seed} embedded in {time.time() - start:.0f} s")


def training_progress(m: Member) -> str:
    """How far a member still in training is, from the training log (the lines since its
    folder's training last started): its last step and the time of the last hundred."""
    tmp = m.folder.with_name(m.folder.name + ".tmp")
    if not tmp.exists():
        return "missing"
    steps = []  # (clock seconds, step)
    lines = TRAIN_LOG.read_text(encoding="utf-8").splitlines() if TRAIN_LOG.exists() else []
    for line in lines:
        if line.endswith(f" {m.name}: training ({m.folder})"):
            steps = []
        match = re.match(rf"(\S+ \S+) {re.escape(m.name)}: step (\d+):", line)
        if match:
            clock = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
            steps.append((clock, int(match.group(2))))
    if not steps:
        return "started"
    text = f"step {steps[-1][1]} of {m.recipe.steps}"
    if len(steps) > 1:
        (t0, s0), (t1, s1) = steps[-2], steps[-1]
        text += f", {(t1 - t0) / max(1, s1 - s0):.1f} s a step lately"
    return text


def object_auroc(member_name: str, domain: str, seed: int = HELD_OUT) -> float | None:
    """How well a phrase's plain cosine with its picture tells present objects from absent
    ones (AUROC, from the cached embeddings; ``None`` before ``embed``)."""

    if not embedding_file(member_name, domain, seed).exists():
        return None
    e = load_embeddings(member_name, domain, seed)
    cos, rows = e.cosines(), e.rows
    present = cos[(rows.kind == "object") & (rows.label == "present")]
    absent = cos[(rows.kind == "object") & (rows.label == "absent")]
    # share of (present, absent) pairs in the right order, ties counting half
    wins = (present[:, None] > absent[None, :]).mean() + 0.5 * (
        present[:, None] == absent[None, :]
    ).mean()
    return float(wins)


def status() -> None:
    """One line per member: state, architecture, training, metrics per domain."""
    print(
        "| member | architecture | trained on | steps | training seconds | retrieval plain / busy "
        "| shape accuracy plain / busy | cosine AUROC objects plain / busy | read as "
        "| embeddings |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in members():
        cached = sum(embedding_file(m.name, d, s).exists() for d in DOMAINS for s in SEEDS)
        form = "openai clip" if m.form == "openai" else "transformers"
        read = f"{form}, {m.dtype}"
        if is_trained(m):
            x = domain_metrics(m)
            trained = json.loads((m.folder / "metrics.json").read_text())
            cells = [
                f"{trained['train_seconds']:.0f} s"
                + (f" (CPU {trained['cpu_seconds']:.0f} s)" if "cpu_seconds" in trained else ""),
                " / ".join(f"{x[d]['retrieval_top1']:.1%}" for d in DOMAINS),
                " / ".join(f"{x[d]['shape_accuracy']:.0%}" for d in DOMAINS),
                " / ".join(
                    "-" if a is None else f"{a:.3f}"
                    for a in (object_auroc(m.name, d) for d in DOMAINS)
                ),
            ]
        else:
            cells = [training_progress(m), "", "", ""]
        print(
            f"| {m.name} | {m.architecture()} | {m.trained_on} | {m.recipe.steps} | "
            + " | ".join(cells)
            + f" | {read} | {cached} of {len(DOMAINS) * len(SEEDS)} |"
        )
    print(f"\nmodels: {model_folder(WorldSpec(), Recipe()).parent}/world-*; zoo files: {ZOO}")
    print(f"embeddings: {EMBEDDINGS}; held-out pictures: {picture_folder('plain').parent}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train every missing member, one after the other")
    p.add_argument("names", nargs="*", help="only these members")
    sub.add_parser("status", help="each member's state and metrics")
    p = sub.add_parser("embed", help="cache the embeddings of every trained member")
    p.add_argument("names", nargs="*", help="only these members")
    args = parser.parse_args()
    for name in getattr(args, "names", None) or []:
        try:
            member(name)  # an unknown name is an error before any work
        except KeyError as exc:
            parser.error(str(exc.args[0]))
    if args.command == "train":
        train_all(args.names)
    elif args.command == "status":
        status()
    else:
        embed_all(args.names, logger(ZOO / "embed.log"))


if __name__ == "__main__":
    main()
