"""Evaluation prompts written like real ones, with the truth of every phrase.

A prompt names the picture's objects and style (as the user asked for them: an object a
style hid is still in the prompt, labelled ``hidden``), absent objects (some of them
attribute swaps: a drawn shape in another colour), an absent style, quality tags, a few
``(phrase:1.3)`` weights, all in random order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from world.scenes import Scene, WorldSpec, object_phrase

LABELS = ("present", "absent", "quality", "hidden")


@dataclass
class PromptPhrase:
    text: str
    label: str  # present | absent | quality | hidden
    kind: str  # object | style | quality
    twin: str | None = None  # for an attribute swap: the drawn object's phrase


@dataclass
class EvalPrompt:
    prompt: str
    phrases: list[PromptPhrase]  # in prompt order

    def label_of(self, text: str) -> PromptPhrase:
        return next(p for p in self.phrases if p.text == text)


def make_prompt(scenes: list[Scene], spec: WorldSpec, rng: np.random.Generator) -> EvalPrompt:
    """A prompt for one picture, or for several seeds of one prompt (same objects and style).

    With several pictures an object is present when all of them show it, hidden when only
    some do.
    """
    first = scenes[0]
    phrases: list[PromptPhrase] = []
    drawn = {(o.colour, o.shape) for o in first.objects}
    for k, obj in enumerate(first.objects):
        shown = [s.objects[k].visible for s in scenes]
        label = "present" if all(shown) else "hidden"
        phrases.append(PromptPhrase(obj.phrase, label, "object"))
    if first.style:
        phrases.append(PromptPhrase(first.style, "present", "style"))
    taken = {p.text for p in phrases}

    def add_absent(colour: str, shape: str, twin: str | None = None) -> None:
        text = object_phrase(colour, shape)
        if (colour, shape) not in drawn and text not in taken:
            taken.add(text)
            phrases.append(PromptPhrase(text, "absent", "object", twin))

    for obj in [o for o in first.objects][: int(rng.integers(1, 3))]:  # attribute swaps
        others = [c for c in spec.colours if (c, obj.shape) not in drawn]
        add_absent(str(rng.choice(others)), obj.shape, obj.phrase)
    for _ in range(int(rng.integers(1, 4))):
        add_absent(str(rng.choice(spec.colours)), str(rng.choice(spec.shapes)))
    if rng.random() < 0.7:
        style = str(rng.choice([s for s in spec.styles if s != first.style]))
        phrases.append(PromptPhrase(style, "absent", "style"))
    for tag in rng.choice(spec.quality_tags, int(rng.integers(0, 4)), replace=False):
        phrases.append(PromptPhrase(str(tag), "quality", "quality"))
    phrases = [phrases[i] for i in rng.permutation(len(phrases))]
    parts = []
    for p in phrases:
        u = rng.random()
        parts.append(f"({p.text}:1.3)" if u < 0.15 else f"({p.text})" if u < 0.2 else p.text)
    return EvalPrompt(", ".join(parts), phrases)
