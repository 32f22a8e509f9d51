"""A small CLIP trained contrastively on the world, on the CPU, cached on disk.

The model has CLIP's real BPE vocabulary (the tokenizer the tests use) and is a
transformers ``CLIPModel`` saved with ``save_pretrained``, so ClipProbe loads it through
the real path (``HFClipEncoder.from_pretrained(folder)``).

    from world.model import trained_world_clip
    folder = trained_world_clip(WorldSpec(seed=0))   # trains once (minutes), then cached
    # ~/.cache/clipprobe-bench/world-<hash>/  (hash of the world spec and the recipe)

Recipe (``Recipe``): captions vary (full content in random order with random quality
tags, a subset, or one phrase); each picture also gets a hard negative caption (one
object recoloured or reshaped, the style changed, an absent object added), so the model
must bind colour to shape instead of counting words.  A per-phrase term (``phrase_loss``)
scores each picture against every single phrase of the world, labelled by its truth, and
pictures are turned, mirrored and shifted (``augment``): without them the small ViT
learnt the colours and not the shapes.  Later phases (``more_steps``) go on from the
previous phase's weights; ``more_single_objects`` gives them one-object pictures and
``more_bf16`` runs them under bfloat16 autocast (half the step time on a CPU with
avx512_bf16).  Training saves a checkpoint every ``CHECKPOINT_EVERY`` steps and resumes
from it when run again.  Held-out retrieval (``retrieval``) and shape accuracy
(``shape_accuracy``) of the default recipe (image tower width 128; 5,000 steps, then
twice 12,000 in bfloat16; about two hours on two cores): 96.0 % / 86 % (after the first
phase 86.2 % / 51 %, after the second 93.8 % / 75 %; colour and shape are still bound
loosely in a crowded picture: 77 % shape accuracy with four objects; bench/README.md,
with the history of earlier recipes).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from world.scenes import STYLE_WORDS, Scene, World, WorldSpec, domain_spec, object_phrase

CACHE = Path.home() / ".cache" / "clipprobe-bench"
TESTS = Path(__file__).resolve().parents[2] / "tests"
CHECKPOINT_EVERY = 100  # steps; an interrupted training resumes from the last one


@dataclass(frozen=True)
class Recipe:
    train_scenes: int = 16000
    steps: int = 5000
    batch: int = 128
    lr: float = 1e-3
    width: int = 128  # image tower
    text_width: int = 64
    vision_layers: int = 3
    text_layers: int = 2
    patch: int = 8
    embed_dim: int = 64
    hard_negatives: bool = True
    seed: int = 0
    version: int = 1  # bump when the training code changes
    # Later phases (an int, or a tuple of steps for a third, ...), each from the previous
    # phase's weights (cached too) at half the learning rate and fresh caption draws.  The
    # first phase alone (86.2 % retrieval) was under-trained (85.6 % on training pictures);
    # a second phase reached 93.8 %, a third 96.0 % (bench/README.md).
    more_steps: int | tuple[int, ...] = (12000, 12000)
    # In the second phase each picture also gets a reshape negative (one object said with
    # another shape, its colour kept): the first phase's model confused shapes most.
    more_shape_negatives: bool = False
    # In later phases, this share of the training pictures holds a single object (no
    # style): within a batch, same-coloured single objects differ by their shape alone,
    # the clearest signal for the shapes the first phase learns slowest.
    more_single_objects: float = 0.0
    # Weight of a per-phrase term (``phrase_targets``): a sigmoid loss, SigLIP-style,
    # between each picture and every single phrase of the world's vocabulary, labelled
    # by the world's truth.  Without it the caption loss alone taught the tiny ViT the
    # colours but not the shapes (shape accuracy given the colour 16-22 %, chance 12.5 %).
    phrase_loss: float = 1.0
    # Each step sees its pictures turned (a quarter turn, a mirror) and shifted by a few
    # pixels: no label names an orientation or a position, and the tiny ViT otherwise
    # memorises where the patches of a shape fall instead of learning the shape.
    augment: bool = True
    # Later phases run their forward passes under bfloat16 autocast (the losses in float
    # 32): half the step time on a CPU with avx512_bf16, so more steps in the same hour.
    more_bf16: bool = True
    # The first phase under bfloat16 autocast too (the zoo measures whether it pays).
    bf16: bool = False
    # Model input side (0: the world's picture side): busy pictures are drawn at 224 px
    # and shrunk by the image processor, as a real CLIP shrinks a generated picture.
    input_size: int = 0
    # Attention heads = width // 64 in both towers, as openai ``clip``'s ``build_model``
    # infers them from a state dict (otherwise 4): a model that can be saved in its format.
    openai_heads: bool = False
    # A second domain ("busy", "plain") for half of the training pictures.
    mix_domain: str = ""

    def key(self) -> str:
        data = asdict(self)
        for name in ("phrase_loss", "augment", "more_single_objects"):  # older recipes
            if not data[name]:
                del data[name]
        if not self.more_steps:
            del data["more_steps"]  # one-phase recipes keep the key they had before
        for name in ("more_shape_negatives", "more_bf16"):
            if not data[name]:
                del data[name]
        for name in ("bf16", "input_size", "openai_heads", "mix_domain"):  # the zoo's
            if not data[name]:
                del data[name]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:8]


def phases(recipe: Recipe) -> tuple[int, ...]:
    """Steps of the phases after the first (``more_steps``: an int or a tuple)."""
    more = recipe.more_steps
    return tuple(more) if isinstance(more, (tuple, list)) else ((more,) if more else ())


def previous_phase(recipe: Recipe) -> Recipe:
    """The recipe whose model a later phase starts from (cached on its own)."""
    before = phases(recipe)[:-1]
    if not before:
        return replace(
            recipe,
            more_steps=0,
            more_shape_negatives=False,
            more_single_objects=0.0,
            more_bf16=False,
        )
    return replace(recipe, more_steps=before if len(before) > 1 else before[0])


def model_folder(spec: WorldSpec, recipe: Recipe) -> Path:
    return CACHE / f"world-{spec.key()}-{recipe.key()}"


def trained_world_clip(
    spec: WorldSpec | None = None, recipe: Recipe | None = None, log=print
) -> Path:
    """Folder of the trained model for this world and recipe; trains it when missing."""
    spec, recipe = spec or WorldSpec(), recipe or Recipe()
    folder = model_folder(spec, recipe)
    if (folder / "metrics.json").exists():
        return folder
    start_from = None
    if recipe.more_steps:
        start_from = trained_world_clip(spec, previous_phase(recipe), log)
    train(spec, recipe, folder, log, start_from)
    return folder


# -- model ------------------------------------------------------------------------------


def build_model(spec: WorldSpec, recipe: Recipe, folder: Path):
    """A fresh CLIPModel and processor with the real CLIP vocabulary, saved in ``folder``."""
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
    )

    sys.path.insert(0, str(TESTS))
    from tiny_clip import save_clip_tokenizer

    tokenizer, vocab = save_clip_tokenizer(folder)
    size = recipe.input_size or spec.image_size
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    w, tw = recipe.width, recipe.text_width
    heads = (w // 64, tw // 64) if recipe.openai_heads else (4, 4)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": tw,
            "intermediate_size": 4 * tw,
            "num_hidden_layers": recipe.text_layers,
            "num_attention_heads": heads[1],
            "max_position_embeddings": 77,
        },
        vision_config={
            "image_size": size,
            "patch_size": recipe.patch,
            "hidden_size": w,
            "intermediate_size": 4 * w,
            "num_hidden_layers": recipe.vision_layers,
            "num_attention_heads": heads[0],
        },
        projection_dim=recipe.embed_dim,
    )
    torch.manual_seed(recipe.seed)
    model = CLIPModel(config)
    # The 49408-row token table stays random and frozen (as in tests/trained_clip.py):
    # words stay distinct, and a step does not pay for updating the whole table.
    with torch.no_grad():
        model.text_model.embeddings.token_embedding.weight.normal_(0, 1.0)
    model.text_model.embeddings.token_embedding.weight.requires_grad_(False)
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return model, processor


# -- captions ---------------------------------------------------------------------------


def content(scene: Scene, rng: np.random.Generator) -> list[str]:
    """The phrases a caption may say about the scene (style word varied)."""
    out = []
    for obj in scene.objects:
        if obj.visible:
            out.append(obj.phrase)
        elif obj.hidden_by == "greyscale":
            out.append(object_phrase(None, obj.shape))
    if scene.style:
        out.append(str(rng.choice(STYLE_WORDS[scene.style])))
    return out


def sample_caption(scene: Scene, spec: WorldSpec, rng: np.random.Generator) -> list[str]:
    parts = content(scene, rng)
    u = rng.random()
    if u < 0.25 and len(parts) > 1:
        parts = [parts[int(rng.integers(len(parts)))]]
    elif u < 0.45 and len(parts) > 2:
        k = int(rng.integers(2, len(parts)))
        parts = [parts[i] for i in rng.choice(len(parts), k, replace=False)]
    if rng.random() < 0.5:
        parts += [str(t) for t in rng.choice(spec.quality_tags, int(rng.integers(1, 3)), False)]
    return [parts[i] for i in rng.permutation(len(parts))]


def hard_negative(parts: list[str], scene: Scene, spec: WorldSpec, rng) -> list[str] | None:
    """The caption with one thing made false: recolour, reshape, restyle, add an object."""
    objs = [o for o in scene.objects if o.visible]
    drawn = {(o.colour, o.shape) for o in scene.objects}
    out = list(parts)
    said = [i for i, p in enumerate(out) if any(p == o.phrase for o in objs)]
    for _ in range(10):
        u = rng.random()
        if said and u < 0.6:
            i = said[int(rng.integers(len(said)))]
            obj = next(o for o in objs if o.phrase == out[i])
            if rng.random() < 0.5:
                new = (str(rng.choice(spec.colours)), obj.shape)
            else:
                new = (obj.colour, str(rng.choice(spec.shapes)))
            if new in drawn:
                continue
            out[i] = object_phrase(*new)
            return out
        if u < 0.8:
            style = str(rng.choice(spec.styles))
            if style == scene.style:
                continue
            words = {w for s in spec.styles for w in STYLE_WORDS[s]}
            kept = [p for p in out if p not in words]
            word = STYLE_WORDS[style][0]
            return (
                kept + [word] if len(kept) == len(out) else [word if p in words else p for p in out]
            )
        new = (str(rng.choice(spec.colours)), str(rng.choice(spec.shapes)))
        if new in drawn:
            continue
        out.insert(int(rng.integers(len(out) + 1)), object_phrase(*new))
        return out
    return None


def reshape_negative(parts: list[str], scene: Scene, spec: WorldSpec, rng) -> list[str] | None:
    """The caption with one said object given another shape (its colour, or none, kept)."""
    drawn = {(o.colour, o.shape) for o in scene.objects}
    said = []
    for i, p in enumerate(parts):
        for o in scene.objects:
            if p == o.phrase and o.visible:
                said.append((i, o.colour))
            elif p == object_phrase(None, o.shape) and o.hidden_by == "greyscale":
                said.append((i, None))
    if not said:
        return None
    i, colour = said[int(rng.integers(len(said)))]
    shapes = [
        s for s in spec.shapes if (colour, s) not in drawn and object_phrase(colour, s) != parts[i]
    ]
    if colour is None:
        shapes = [s for s in spec.shapes if s not in {o.shape for o in scene.objects}]
    if not shapes:
        return None
    out = list(parts)
    out[i] = object_phrase(colour, str(rng.choice(shapes)))
    return out


def phrase_vocabulary(spec: WorldSpec) -> list[str]:
    """Every single phrase the per-phrase term scores: objects, bare shapes, style words."""
    bare = [object_phrase(None, shape) for shape in spec.shapes]
    styles = [w for style in spec.styles for w in STYLE_WORDS[style]]
    return spec.object_phrases() + bare + styles


def phrase_targets(scene: Scene, vocabulary: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """1 for what the picture shows, 0 for what it does not, and a mask that leaves out
    what is drawn but hidden (neither: its label would be a guess).  Quality tags are not
    in the vocabulary: the model learns about them from the captions alone."""
    index = {p: i for i, p in enumerate(vocabulary)}
    target = np.zeros(len(vocabulary), np.float32)
    mask = np.ones(len(vocabulary), np.float32)
    for obj in scene.objects:
        bare = index[object_phrase(None, obj.shape)]
        if obj.visible:
            target[index[obj.phrase]] = 1
            target[bare] = 1
        else:
            mask[index[obj.phrase]] = 0
            if obj.hidden_by == "greyscale":
                target[bare] = 1  # the shape is still there
            elif not target[bare]:
                mask[bare] = 0
    if scene.style:
        for word in STYLE_WORDS[scene.style]:
            target[index[word]] = 1
    return target, mask * (1 - target) + target


class Tokens:
    """Token ids of captions, built from cached per-phrase ids (the BPE splits at commas)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.comma = tokenizer(",", add_special_tokens=False)["input_ids"][0]
        self.bos, self.eos = tokenizer.bos_token_id, tokenizer.eos_token_id
        self.cache: dict[str, list[int]] = {}

    def ids(self, parts: list[str]) -> list[int]:
        out = [self.bos]
        for k, p in enumerate(parts):
            if p not in self.cache:
                self.cache[p] = self.tokenizer(p, add_special_tokens=False)["input_ids"]
            if k:
                out.append(self.comma)
            out.extend(self.cache[p])
        return out + [self.eos]

    def batch(self, captions: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = [self.ids(c)[:77] for c in captions]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.eos, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = torch.tensor(s)
            mask[row, : len(s)] = 1
        return ids, mask


def augment(batch: torch.Tensor, gen: torch.Generator, shift: int = 6) -> torch.Tensor:
    """The batch turned by a random quarter turn, maybe mirrored, and shifted by up to
    ``shift`` pixels (edges repeated): the same content for every label of the world."""
    turns = int(torch.randint(4, (1,), generator=gen))
    batch = torch.rot90(batch, turns, (2, 3))
    if torch.rand(1, generator=gen) < 0.5:
        batch = batch.flip(3)
    dx, dy = (int(v) for v in torch.randint(-shift, shift + 1, (2,), generator=gen))
    size = batch.shape[-1]
    padded = torch.nn.functional.pad(batch, (shift,) * 4, mode="replicate")
    return padded[:, :, shift + dy : shift + dy + size, shift + dx : shift + dx + size]


def pixels(processor, images) -> torch.Tensor:
    return processor.image_processor(list(images), return_tensors="pt")["pixel_values"]


# -- training ---------------------------------------------------------------------------


def training_pool(spec: WorldSpec, recipe: Recipe, singles: int, processor):
    """The training scenes and their model-ready pixels.

    Rendered 500 at a time; each scene then lets go of its picture and masks (only its
    labels are read later): 16,000 busy pictures would otherwise hold gigabytes."""
    world = World(spec)
    own = recipe.train_scenes - singles
    draws = [(world, i, {}) for i in range(own)]
    if recipe.mix_domain:  # half the pool from the other domain's world
        other = World(domain_spec(recipe.mix_domain, spec.seed))
        draws = draws[: own - own // 2] + [(other, i, {}) for i in range(own // 2)]
    if singles:  # other indices than the pool's: new pictures of one object each
        alone = World(replace(spec, max_objects=1))
        draws += [(alone, 10**6 + i, {"style": None}) for i in range(singles)]
    scenes, chunks = [], []
    for start in range(0, len(draws), 500):
        chunk = [w.scene(i, "train", **kw) for w, i, kw in draws[start : start + 500]]
        chunks.append(pixels(processor, [s.image for s in chunk]))
        for scene in chunk:
            scene.image = None
            for obj in scene.objects:
                obj.mask = None
        scenes += chunk
    return scenes, torch.cat(chunks)


def train(
    spec: WorldSpec, recipe: Recipe, folder: Path, log=print, start_from: Path | None = None
) -> dict:
    start, cpu_start = time.time(), time.process_time()
    before = {"seconds": 0.0, "cpu_seconds": 0.0}  # spent by earlier runs (a resume)
    world = World(spec)
    tmp = folder.with_name(folder.name + ".tmp")
    model, processor = build_model(spec, recipe, tmp)
    steps, lr, seed = recipe.steps, recipe.lr, recipe.seed
    reshape, singles, bf16 = False, 0, recipe.bf16
    if start_from is not None:
        from transformers import CLIPModel

        model = CLIPModel.from_pretrained(start_from)
        model.text_model.embeddings.token_embedding.weight.requires_grad_(False)
        steps, lr = phases(recipe)[-1], recipe.lr / 2
        seed = recipe.seed + len(phases(recipe))
        reshape = recipe.more_shape_negatives
        singles = int(recipe.more_single_objects * recipe.train_scenes)
        bf16 = recipe.more_bf16
    tokens = Tokens(processor.tokenizer)
    scenes, pool = training_pool(spec, recipe, singles, processor)
    vocabulary = phrase_vocabulary(spec)
    vocab_ids, vocab_mask = tokens.batch([[p] for p in vocabulary])
    labels = [phrase_targets(s, vocabulary) for s in scenes]
    targets = torch.tensor(np.stack([t for t, _ in labels]))
    known = torch.tensor(np.stack([m for _, m in labels]))
    # the per-phrase term's own temperature and bias, and a linear head on the image
    # tower's pooled output that reads the same labels (training only, not saved)
    phrase_head = torch.nn.Parameter(torch.tensor([np.log(10.0), -5.0]))
    probe = torch.nn.Linear(recipe.width, len(vocabulary))
    log(f"rendered {len(scenes)} training pictures in {time.time() - start:.0f} s")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if recipe.phrase_loss:
        trainable += [phrase_head, *probe.parameters()]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.05)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / steps))),
    )
    first = 0
    checkpoint = tmp / "checkpoint.pt"
    if checkpoint.exists():  # an interrupted run goes on where it stopped
        state = torch.load(checkpoint, weights_only=False)  # our own file: rng states too
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["rng"]
        gen.set_state(state["gen"])
        if "phrase_head" in state:
            with torch.no_grad():
                phrase_head.copy_(state["phrase_head"])
            probe.load_state_dict(state["probe"])
        first = state["step"]
        before = {k: state.get(k, 0.0) for k in before}
        log(f"resumed at step {first}")
    model.train()
    for step in range(first, steps):
        pick = torch.randperm(len(scenes), generator=gen)[: recipe.batch]
        captions = [sample_caption(scenes[int(i)], spec, rng) for i in pick]
        texts = list(captions)
        if recipe.hard_negatives:
            for i, c in zip(pick, captions):
                neg = hard_negative(c, scenes[int(i)], spec, rng)
                if neg is not None:
                    texts.append(neg)
        if reshape:
            for i, c in zip(pick, captions):
                neg = reshape_negative(c, scenes[int(i)], spec, rng)
                if neg is not None:
                    texts.append(neg)
        ids, mask = tokens.batch(texts)
        batch = augment(pool[pick], gen) if recipe.augment else pool[pick]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pooled = model.vision_model(pixel_values=batch).pooler_output
            img = model.visual_projection(pooled)
            txt = model.get_text_features(input_ids=ids, attention_mask=mask)
            if recipe.phrase_loss:
                vocab = model.get_text_features(input_ids=vocab_ids, attention_mask=vocab_mask)
                probed = probe(pooled)
        img, txt = img.float(), txt.float()
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * img @ txt.T  # [B, B + negatives]
        labels = torch.arange(len(pick))
        loss = (
            torch.nn.functional.cross_entropy(logits, labels)
            + torch.nn.functional.cross_entropy(logits[:, : len(pick)].T, labels)
        ) / 2
        if recipe.phrase_loss:
            vocab = vocab.float()
            vocab = vocab / vocab.norm(dim=-1, keepdim=True)
            z = phrase_head[0].exp() * img @ vocab.T + phrase_head[1]  # [B, V]
            bce = torch.nn.functional.binary_cross_entropy_with_logits(
                z, targets[pick], reduction="none"
            )
            bce = bce + torch.nn.functional.binary_cross_entropy_with_logits(
                probed.float(), targets[pick], reduction="none"
            )
            loss = loss + recipe.phrase_loss * (bce * known[pick]).sum() / known[pick].sum()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        if step % 100 == 0 or step == steps - 1:
            log(
                f"step {step}: loss {loss.item():.3f}, scale {scale.item():.1f}, {time.time() - start:.0f} s"
            )
        if step % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1 and step < steps - 1:
            state = {
                "step": step + 1,
                "seconds": before["seconds"] + time.time() - start,
                "cpu_seconds": before["cpu_seconds"] + time.process_time() - cpu_start,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "rng": rng.bit_generator.state,
                "gen": gen.get_state(),
                "phrase_head": phrase_head.detach(),
                "probe": probe.state_dict(),
            }
            torch.save(state, checkpoint.with_suffix(".part"))
            checkpoint.with_suffix(".part").rename(checkpoint)
        if step % 500 == 499:
            model.eval()
            log(f"  retrieval top-1 (200 held out): {retrieval(model, processor, world, 200)}")
            log(f"  shape accuracy given the colour: {shape_accuracy(model, processor, world)}")
            model.train()
    model.eval()
    checkpoint.unlink(missing_ok=True)
    model.save_pretrained(tmp, safe_serialization=True)  # the WebUI refuses pickles
    processor.save_pretrained(tmp)
    metrics = {
        # every run's time to its last checkpoint, and this run's (a resume renders again)
        "train_seconds": round(before["seconds"] + time.time() - start, 1),
        "cpu_seconds": round(before["cpu_seconds"] + time.process_time() - cpu_start, 1),
        "threads": torch.get_num_threads(),
        "recipe": asdict(recipe),
        "world": asdict(spec),
        "retrieval_top1": retrieval(model, processor, World(spec), 500),
        "shape_accuracy": shape_accuracy(model, processor, World(spec)),
    }
    log(f"held-out retrieval top-1: {metrics['retrieval_top1']}")
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)
    return metrics


@torch.no_grad()
def retrieval(model, processor, world: World, n: int = 500) -> float:
    """Top-1 picture -> caption retrieval on ``n`` held-out pictures (split "eval").

    Candidates: the canonical captions (content in a fixed order, no quality tags) of the
    same ``n`` pictures; a hit when the best caption's text equals the picture's own.
    """
    tokens = Tokens(processor.tokenizer)
    scenes = [world.scene(i, "eval") for i in range(n)]
    truth = [s.canonical_caption() for s in scenes]
    ids, mask = tokens.batch([t.split(", ") if t else [] for t in truth])
    txt = model.get_text_features(input_ids=ids, attention_mask=mask)
    img = model.get_image_features(pixel_values=pixels(processor, [s.image for s in scenes]))
    sims = (img / img.norm(dim=-1, keepdim=True)) @ (txt / txt.norm(dim=-1, keepdim=True)).T
    best = sims.argmax(1).tolist()
    return round(float(np.mean([truth[b] == t for b, t in zip(best, truth)])), 4)


@torch.no_grad()
def shape_accuracy(model, processor, world: World, n: int = 300) -> float:
    """How often, for a visible object of a held-out picture without style, its own phrase
    beats the same colour with every other shape (chance: one in the number of shapes)."""
    spec, tokens = world.spec, Tokens(processor.tokenizer)
    phrases = spec.object_phrases()
    ids, mask = tokens.batch([[p] for p in phrases])
    txt = model.get_text_features(input_ids=ids, attention_mask=mask)
    scenes = [world.scene(i, "eval", style=None) for i in range(n)]
    img = model.get_image_features(pixel_values=pixels(processor, [s.image for s in scenes]))
    sims = (img / img.norm(dim=-1, keepdim=True)) @ (txt / txt.norm(dim=-1, keepdim=True)).T
    hits = []
    for scene, row in zip(scenes, sims.tolist()):
        for obj in (o for o in scene.objects if o.visible):
            same = [object_phrase(obj.colour, shape) for shape in spec.shapes]
            best = max(same, key=lambda p: row[phrases.index(p)])
            hits.append(best == obj.phrase)
    return round(float(np.mean(hits)), 4)


def recipe_steps(more: list[int] | None) -> int | tuple[int, ...]:
    """``--more-steps`` as a recipe field (none given: the default recipe's)."""
    if more is None:
        return Recipe.more_steps
    return more[0] if len(more) == 1 else tuple(more)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Train (or find) the world's CLIP.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=Recipe.steps)
    parser.add_argument("--scenes", type=int, default=Recipe.train_scenes)
    parser.add_argument("--more-steps", type=int, nargs="+", help="later phases' steps")
    parser.add_argument("--shape-negatives", action="store_true", help="second phase")
    parser.add_argument(
        "--single-objects",
        type=float,
        default=0.0,
        help="later phases: share of one-object pictures",
    )
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=Recipe.more_bf16,
        help="later phases under bfloat16 autocast",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--width", type=int, default=Recipe.width, help="image tower width")
    parser.add_argument("--vision-layers", type=int, default=Recipe.vision_layers)
    parser.add_argument("--lr", type=float, default=Recipe.lr)
    parser.add_argument("--phrase-loss", type=float, default=Recipe.phrase_loss)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    r = Recipe(
        steps=args.steps,
        train_scenes=args.scenes,
        more_steps=recipe_steps(args.more_steps),
        more_shape_negatives=args.shape_negatives,
        more_single_objects=args.single_objects,
        more_bf16=args.bf16,
        width=args.width,
        vision_layers=args.vision_layers,
        lr=args.lr,
        phrase_loss=args.phrase_loss,
    )
    print(trained_world_clip(WorldSpec(seed=args.seed), r))
