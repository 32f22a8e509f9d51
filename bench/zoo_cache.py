"""Embeddings of the zoo's evaluation pictures, cached so that experiments are numpy.

For each member, domain ("plain", "busy") and world seed (0: tuning, 1: held out, as
``bench_advice.py`` uses them): 300 pictures of split "eval", each with its own prompt
from ``world.prompts.make_prompt`` (the rng seeded with the world seed, as
``bench_advice.py`` does), encoded through ClipProbe's own encoders (``load_encoder``
with the member's name and dtype).  One ``.npz`` per (member, domain, seed) under
``~/.cache/clipprobe-bench/zoo/embeddings/`` holds the embeddings and the truth; the
pictures of the held-out seed are also written once per domain as PNG files with the
WebUI's ``parameters`` text, so that the command line can run on a real folder.

    from zoo import load_embeddings
    e = load_embeddings("plain-s0", "busy", 1)
    e.images @ e.text_embeddings.T          # cosines, [pictures, distinct phrases]
    e.cosines()                             # one per row (a phrase of a picture's prompt)
    e.rows.label, e.rows.kind               # present / absent / quality / hidden; object / ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from world.model import CACHE
from world.prompts import make_prompt
from world.scenes import World, domain_spec

ZOO = CACHE / "zoo"
EMBEDDINGS = ZOO / "embeddings"
PICTURES = ZOO / "pictures"
PICTURE_COUNT = 300
TUNING = 0  # the seed fits are made on
HELD_OUT = 1  # the seed they are judged on
SEEDS = (TUNING, HELD_OUT)
FORMAT = 1  # bump when the file's contents change


def world_spec(domain: str, seed: int):
    """The evaluation world of a domain (plain: bench_advice's 64 px world)."""
    return domain_spec(domain, seed)


@dataclass
class PromptedPicture:
    index: int
    image: object  # PIL
    prompt: str
    phrases: list  # world.prompts.PromptPhrase, in prompt order


def prompted_pictures(domain: str, seed: int, count: int = PICTURE_COUNT) -> list[PromptedPicture]:
    """The pictures and prompts of (domain, seed): one picture per prompt."""
    from clipprobe_ext.prompt import parse_prompt

    spec = world_spec(domain, seed)
    world, rng = World(spec), np.random.default_rng(seed)
    out = []
    for n in range(count):
        scene = world.scene(n, "eval")
        prompt = make_prompt([scene], spec, rng)
        clean = [p.text for p in parse_prompt(prompt.prompt).measurable]
        if clean != [p.text for p in prompt.phrases]:  # what ClipProbe measures
            raise ValueError(f"the parser reads {clean}, the world wrote {prompt.phrases}")
        out.append(PromptedPicture(n, scene.image, prompt.prompt, prompt.phrases))
    return out


def infotext(prompt: str, seed: int, size: tuple[int, int]) -> str:
    return (
        f"{prompt}\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: {seed}, "
        f"Size: {size[0]}x{size[1]}, Model: world"
    )


def picture_folder(domain: str, seed: int = HELD_OUT) -> Path:
    return PICTURES / f"{domain}-s{seed}"


def write_pictures(domain: str, seed: int, pictures: list[PromptedPicture]) -> Path:
    """PNG files with the WebUI's ``parameters`` chunk, and the truth beside the folder."""
    from PIL.PngImagePlugin import PngInfo

    folder = picture_folder(domain, seed)
    truth = folder.with_name(folder.name + ".truth.json")
    if truth.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in pictures:
        info = PngInfo()
        info.add_text("parameters", infotext(p.prompt, p.index, p.image.size))
        name = f"{p.index:04d}.png"
        p.image.save(folder / name, pnginfo=info)
        rows.append({"file": name, "prompt": p.prompt, "phrases": [vars(q) for q in p.phrases]})
    truth.write_text(json.dumps(rows, indent=1))
    return folder


def embedding_file(member: str, domain: str, seed: int) -> Path:
    return EMBEDDINGS / f"{member}-{domain}-s{seed}.npz"


def encode(encoder, pictures: list[PromptedPicture]) -> dict:
    """Everything the file holds that depends on the model."""
    from clipprobe_ext.analysis.references import NEUTRAL_PHRASES, reference_images

    texts = sorted({q.text for p in pictures for q in p.phrases})

    def unit_texts(values):
        return encoder.encode_texts(list(values))[0].numpy().astype(np.float32)

    return {
        "images": encoder.encode_images([p.image for p in pictures]).numpy().astype(np.float32),
        "texts": np.array(texts),
        "text_embeddings": unit_texts(texts),
        "neutral_texts": np.array(NEUTRAL_PHRASES),
        "neutral": unit_texts(NEUTRAL_PHRASES),
        "reference": encoder.encode_images(reference_images()).numpy().astype(np.float32),
        "empty": unit_texts([""])[0],
        "logit_scale": np.float32(encoder.logit_scale),
    }


def truth_arrays(pictures: list[PromptedPicture], texts: np.ndarray) -> dict:
    """One row per phrase of a picture's prompt: picture, phrase, label, kind, twin."""
    index = {t: i for i, t in enumerate(texts.tolist())}
    rows = [(p.index, q) for p in pictures for q in p.phrases]
    return {
        "prompts": np.array([p.prompt for p in pictures]),
        "row_picture": np.array([k for k, _ in rows], np.int32),
        "row_text": np.array([index[q.text] for _, q in rows], np.int32),
        "row_label": np.array([q.label for _, q in rows]),
        "row_kind": np.array([q.kind for _, q in rows]),
        "row_twin": np.array([q.twin or "" for _, q in rows]),
    }


def save_embeddings(path: Path, arrays: dict, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part.npz")
    np.savez_compressed(part, meta=np.array(json.dumps(meta)), **arrays)
    part.rename(path)


@dataclass
class Rows:
    """One row per phrase of a picture's prompt (hidden phrases included)."""

    picture: np.ndarray  # [M] index into the pictures
    text: np.ndarray  # [M] index into ``texts``
    label: np.ndarray  # [M] present / absent / quality / hidden
    kind: np.ndarray  # [M] object / style / quality
    twin: np.ndarray  # [M] an attribute swap's drawn phrase, else ""


@dataclass
class ZooEmbeddings:
    """What ``load_embeddings`` returns: unit embeddings (float32) and the truth."""

    member: str
    domain: str
    seed: int
    images: np.ndarray  # [N, d] the pictures
    prompts: list[str]  # [N] each picture's own prompt
    texts: list[str]  # [T] distinct phrase texts (clean, as ClipProbe measures them)
    text_embeddings: np.ndarray  # [T, d]
    rows: Rows
    neutral_texts: list[str]  # ClipProbe's everyday phrases (references.NEUTRAL_PHRASES)
    neutral: np.ndarray  # [K, d]
    reference: np.ndarray  # [J, d] the pictures of nothing (references.reference_images)
    empty: np.ndarray  # [d] the empty prompt
    logit_scale: float
    meta: dict  # member, encoder, dtype, metrics, picture folder, ...

    @property
    def picture_files(self) -> list[Path] | None:
        """The PNG files of the pictures (held-out seed only)."""
        folder = self.meta.get("picture_folder")
        if not folder:
            return None
        return [Path(folder) / f"{i:04d}.png" for i in range(len(self.prompts))]

    def cosines(self) -> np.ndarray:
        """Cosine of each row's phrase with its picture, [M]."""
        rows = self.rows
        return np.einsum("md,md->m", self.images[rows.picture], self.text_embeddings[rows.text])


def embeddings_of(arrays, member: str, domain: str, seed: int, meta: dict) -> ZooEmbeddings:
    """``ZooEmbeddings`` from the arrays a cache file holds (or ``encode`` returns with
    ``truth_arrays``)."""
    return ZooEmbeddings(
        member=member,
        domain=domain,
        seed=seed,
        images=arrays["images"],
        prompts=arrays["prompts"].tolist(),
        texts=arrays["texts"].tolist(),
        text_embeddings=arrays["text_embeddings"],
        rows=Rows(*(arrays[f"row_{k}"] for k in ("picture", "text", "label", "kind", "twin"))),
        neutral_texts=arrays["neutral_texts"].tolist(),
        neutral=arrays["neutral"],
        reference=arrays["reference"],
        empty=arrays["empty"],
        logit_scale=float(arrays["logit_scale"]),
        meta=meta,
    )


def load_embeddings(member: str, domain: str, seed: int) -> ZooEmbeddings:
    """The cached embeddings of (member, domain, seed); ``python zoo.py embed`` makes them."""
    path = embedding_file(member, domain, seed)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python bench/zoo.py embed`")
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        return embeddings_of(data, member, domain, seed, meta)
