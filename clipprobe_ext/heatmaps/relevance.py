"""Relevance of every image patch for every phrase, from one kept tower pass.

The last-block methods (``chefer``, ``grad-eclip``) read the gradient of each phrase's score (cosine of the unit image
and text embeddings) with respect to the class token's attention probabilities of the
last block.  That gradient is exact and cheap for a whole batch of phrases at once: the
class token's attention output is ``o_h = sum_i a_hi v_hi``, so
``dS/da_hi = (dS/do_h) . v_hi``, and ``dS/do`` needs only the short float32 path from
``o`` to the image features (one token, no attention).  That path runs on P copies of
``o`` and is differentiated once for all P phrases, so the cost is one tower forward plus
a few token-sized matrix products per phrase.

Methods (each maps [P] phrases to [P, grid, grid]):

- ``chefer``: Chefer et al. 2021, CLIP variant with its default start layer for ViT-B/32
  (the last block): ``R = I + mean_h(clamp(grad * attn, 0)) @ I``, relevance ``R[cls, patches]``.
- ``grad-eclip``: Zhao et al. 2024: ``relu(sum_c dS/do_c * v_ic * lambda_i)`` with the
  loosened attention ``lambda_i`` = min-max normalised cosine of the class query and key i.
- ``chefer-2``, ``chefer-3``, ``chefer-all``: the same rule over the last two or three
  blocks, or all of them (``chefer_layers``: those blocks once more forward, and a
  batched backward).  ``chefer-all`` is the default: across the benchmark's zoo of
  models it is the only one that points at the phrase's object at least 85 % of the
  time on every model (``chefer-2`` fell to 76 % on a 4-block one); it costs 17x one
  image encode with 20 phrases on a ViT-B/32-sized model, ``chefer-2`` 2.6x (figures in
  ``bench/README.md``).
- ``rollout``: Abnar & Zuidema 2020 attention rollout (phrase-independent baseline).
- ``centre``: a Gaussian centre prior (baseline: where photographers put subjects).
"""

from __future__ import annotations

import torch

from clipprobe_ext.heatmaps.chefer_layers import chefer_from
from clipprobe_ext.heatmaps.tower import TowerPass, ViTTower, last_block_head

GRADIENT_METHODS = ("grad-eclip", "chefer", "chefer-2", "chefer-3", "chefer-all")
BASELINES = ("rollout", "centre")
METHODS = GRADIENT_METHODS + BASELINES
DEFAULT_METHOD = "chefer-all"


def phrase_scores_and_grads(
    tower: ViTTower, kept: TowerPass, text: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine of the picture with each unit text embedding [P, E], and the gradient of
    each cosine with respect to the last block's class-token attention output, [P, D].

    One backward for all P phrases: copy p of ``o`` only reaches score p.
    """
    head = last_block_head(tower)
    text = text.to(tower.device, torch.float32)
    with torch.inference_mode(False), torch.enable_grad():
        o = kept.last_cls_output.detach().float().clone()
        copies = o.expand(text.shape[0], -1).clone().requires_grad_(True)
        features = head(copies, kept.last_cls_residual.detach().float().clone())
        unit = features / features.norm(dim=-1, keepdim=True)
        scores = (unit * text).sum(-1)
        (grads,) = torch.autograd.grad(scores.sum(), copies)
    return scores.detach(), grads.detach()


def attention_gradients(kept: TowerPass, grads: torch.Tensor) -> torch.Tensor:
    """dS_p / da_hi for the class token's attention row of the last block, [P, H, N]."""
    heads, _, width = kept.last_v.shape
    per_head = grads.view(grads.shape[0], heads, width)  # [P, H, d]
    return torch.einsum("phd,hnd->phn", per_head, kept.last_v)


def chefer(kept: TowerPass, grads: torch.Tensor) -> torch.Tensor:
    cam = (attention_gradients(kept, grads) * kept.last_cls_attention).clamp(min=0).mean(1)
    return cam[:, 1:]  # R = I + cam: the class row over the patches is cam's


def grad_eclip(kept: TowerPass, grads: torch.Tensor) -> torch.Tensor:
    heads, n, d = kept.last_q.shape
    q_cls = kept.last_q[:, 0].reshape(-1)  # all heads concatenated
    keys = kept.last_k[:, 1:].transpose(0, 1).reshape(n - 1, heads * d)
    cosine = torch.nn.functional.cosine_similarity(keys, q_cls[None], dim=-1)
    loosened = (cosine - cosine.min()) / (cosine.max() - cosine.min()).clamp_min(1e-12)
    channel = attention_gradients(kept, grads).sum(1)[:, 1:]  # sum_c dS/do_c v_ic
    return torch.relu(channel * loosened)


def rollout(kept: TowerPass, count: int) -> torch.Tensor:
    n = kept.attentions[0].shape[0]
    eye = torch.eye(n, device=kept.attentions[0].device)
    joint = eye
    for attention in kept.attentions:
        mixed = attention + eye
        joint = (mixed / mixed.sum(-1, keepdim=True)) @ joint
    return joint[0, 1:].expand(count, -1)


def centre_prior(grid: int, count: int) -> torch.Tensor:
    axis = (torch.arange(grid, dtype=torch.float32) + 0.5) / grid - 0.5
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    prior = torch.exp(-(xx**2 + yy**2) / (2 * 0.25**2)).reshape(-1)
    return prior.expand(count, -1)


def relevance(
    tower: ViTTower,
    kept: TowerPass,
    text: torch.Tensor,
    method: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores [P] and maps [P, grid, grid] (float32, CPU, each min-max scaled to [0, 1];
    all zero where a phrase has no positive relevance) for unit text embeddings [P, E]."""
    if method not in METHODS:
        raise ValueError(f"Unknown heatmap method {method!r}; choose one of {', '.join(METHODS)}.")
    scores, grads = phrase_scores_and_grads(tower, kept, text)
    count = text.shape[0]
    if method == "chefer":
        maps = chefer(kept, grads)
    elif method in ("chefer-2", "chefer-3", "chefer-all"):
        depth = len(tower.blocks) if method == "chefer-all" else int(method[-1])
        start = max(0, len(tower.blocks) - depth)
        maps = chefer_from(tower, kept, text, start)
    elif method == "grad-eclip":
        maps = grad_eclip(kept, grads)
    elif method == "rollout":
        maps = rollout(kept, count)
    else:
        maps = centre_prior(kept.grid, count)
    maps = maps.float().cpu()
    low = maps.amin(-1, keepdim=True)
    maps = (maps - low) / (maps.amax(-1, keepdim=True) - low).clamp_min(1e-30)
    maps = torch.nan_to_num(maps, nan=0.0, posinf=0.0, neginf=0.0).clamp(0, 1)
    return scores.cpu(), maps.reshape(count, kept.grid, kept.grid)
