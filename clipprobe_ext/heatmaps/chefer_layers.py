"""Chefer et al.'s rule over several blocks, by plain autograd (the costly reference).

``R = I``; for each block from ``start`` on: ``R += mean_h(clamp(dS/dA * A, 0)) @ R``;
relevance ``R[cls, patches]``.  It needs the gradient of every phrase's score with
respect to whole attention matrices of several blocks, so the blocks from ``start`` on
run on P copies of the picture's tokens (one per phrase) and are differentiated once:
about P times the forward cost of those blocks.  ``relevance.chefer`` is the last-block
case (``start`` = last), which needs none of this; this module is the comparison and the
independent check of it.
"""

from __future__ import annotations

import torch

from clipprobe_ext.heatmaps.tower import ViTTower, block_step, embed, features_of


def chefer_from(
    tower: ViTTower, pixels: torch.Tensor, text: torch.Tensor, start: int = 0
) -> torch.Tensor:
    """Relevance [P, N - 1] of every patch for each unit text embedding [P, E]."""
    count = text.shape[0]
    text = text.to(tower.device, torch.float32)
    with torch.inference_mode(False):
        with torch.no_grad():
            x = embed(tower, pixels)
            for block in tower.blocks[:start]:
                x = block_step(block, x).x
        with torch.enable_grad():
            x = x.expand(count, -1, -1).clone().requires_grad_(True)
            probs = []
            for block in tower.blocks[start:]:
                step = block_step(block, x)
                probs.append(step.probs)
                x = step.x
            features = features_of(tower, x).float()
            scores = (features / features.norm(dim=-1, keepdim=True) * text).sum(-1)
            grads = torch.autograd.grad(scores.sum(), probs)
    n = probs[0].shape[-1]
    relevance = torch.eye(n, device=text.device).expand(count, n, n)
    for attention, grad in zip(probs, grads):
        cam = (grad.float() * attention.detach().float()).clamp(min=0).mean(1)
        relevance = relevance + cam @ relevance
    return relevance[:, 0, 1:]
