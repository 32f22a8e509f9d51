"""Do ClipProbe's verdicts hold on a model they were not fitted on?  The zoo, rule by rule.

    python bench/bench_transfer.py [--members NAME ...] [--pictures 300] [--rules ...]
        [--json out.json] [--markdown] [--threads 1]

For every zoo member that is trained (``zoo.py status``) and each domain ("plain",
"busy"), the held-out seed's pictures with their prompts go through the real
``clipprobe_ext.probe.analyze`` (5 rounds, tolerance 1 %) and the member's real encoder,
once per *rule*: how the model's presence calibration is obtained (``transfer_rules``).
Every figure is scored against the world's truth with ``bench_advice``'s rows and
metrics.  The fits are made from the tuning seed's cached embeddings (``zoo_cache``;
computed in memory for a member whose cache is not written yet).  Everything here is a
synthetic world of small CLIPs, not a real CLIP.
"""

from __future__ import annotations

import os

# Waiting OpenMP threads sleep instead of spinning on a shared machine (as zoo.py does).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_advice import evaluate, phrase_rows  # noqa: E402
from transfer_rules import (  # noqa: E402
    ALL_CANDIDATES,
    DOMAINS,
    FIT,
    NO_PRESENCE,
    OLD_DEFAULT,
    RULES,
    Rule,
    applied,
    conservative_fit,
    other_domain,
    self_fit,
    truth_fit,
)
from transfer_table import print_report  # noqa: E402
from zoo import is_trained, members  # noqa: E402
from zoo_cache import (  # noqa: E402
    HELD_OUT,
    PICTURE_COUNT,
    TUNING,
    ZooEmbeddings,
    embedding_file,
    embeddings_of,
    encode,
    load_embeddings,
    prompted_pictures,
    truth_arrays,
)

from clipprobe_ext.analysis.references import reference_banks  # noqa: E402
from clipprobe_ext.analysis.self_calibration import CalibrationRefused  # noqa: E402
from clipprobe_ext.probe import ProbeOptions, analyze  # noqa: E402


class KnownImages:
    """The member's encoder, with the held-out pictures encoded once: every rule's
    analysis asks for the same pictures again.  Anything else goes to the encoder."""

    def __init__(self, encoder, images: list) -> None:
        self._encoder = encoder
        self._images = images  # kept alive: their ids are the keys
        embeddings = encoder.encode_images(images)
        self._rows = {id(image): embeddings[k] for k, image in enumerate(images)}
        self.embeddings = embeddings

    def encode_images(self, images):
        import torch

        if images and all(id(image) in self._rows for image in images):
            return torch.stack([self._rows[id(image)] for image in images])
        return self._encoder.encode_images(images)

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)


def load_member_encoder(member):
    """The member's real encoder (the openai member through ``openai-clip:``, the float16
    one in float16); text embeddings in memory only: the benchmark's tens of thousands of
    prompt variants would crowd the user's embedding store."""
    import torch

    from clipprobe_ext.encoders import load_encoder

    return load_encoder(
        member.encoder_name, device="cpu", dtype=getattr(torch, member.dtype), keep_embeddings=False
    )


def tuning_embeddings(member, domain: str, encoder_for) -> ZooEmbeddings:
    """The tuning seed's embeddings and truth: from the zoo cache, else encoded now (in
    memory; ``zoo.py embed`` writes the cache)."""
    if embedding_file(member.name, domain, TUNING).exists():
        return load_embeddings(member.name, domain, TUNING)
    pictures = prompted_pictures(domain, TUNING)
    return embeddings_now(encoder_for(member), pictures, member.name, domain, TUNING)


def embeddings_now(encoder, pictures: list, name: str, domain: str, seed: int) -> ZooEmbeddings:
    """What ``zoo_cache.load_embeddings`` would give, encoded now and kept in memory."""
    arrays = encode(encoder, pictures)
    arrays.update(truth_arrays(pictures, arrays["texts"]))
    meta = {"member": name, "encoded": "in memory by bench_transfer.py"}
    return embeddings_of(arrays, name, domain, seed, meta)


def member_fits(ready, encoder_for, log) -> tuple[dict, dict]:
    """Per (member, domain): the fit from the truth, and the label-free fit (or why the
    engine refused it), both on the tuning seed."""
    truth, own_pictures = {}, {}
    for m in ready:
        for domain in DOMAINS:
            e = tuning_embeddings(m, domain, encoder_for)
            source = f"truth fit, {m.name}, {domain} seed {TUNING}"
            truth[m.name, domain] = truth_fit(e, source)
            try:
                own_pictures[m.name, domain] = self_fit(e)
            except CalibrationRefused as exc:
                own_pictures[m.name, domain] = str(exc)
            log(f"{m.name} {domain}: fits made on seed {TUNING}")
    return truth, own_pictures


def rules_for(name: str, domain: str, truth: dict, own_pictures: dict, wanted) -> list[Rule]:
    """Every wanted rule for the held-out member ``name`` on ``domain``."""
    other = other_domain(domain)
    out = []

    def label_free(rule: str, fit) -> Rule:
        if isinstance(fit, str):  # refused: the model has no fit, as without one
            return Rule(rule, NO_PRESENCE, note=f"refused, so uncalibrated: {fit}")
        return Rule(rule, FIT, fit)

    others = [fit for (m, _), fit in truth.items() if m != name]
    for rule in wanted:
        if rule == "default":
            out.append(Rule(rule, FIT, OLD_DEFAULT))
        elif rule == "own":
            out.append(Rule(rule, FIT, truth[name, domain]))
        elif rule == "own-other-domain":
            out.append(Rule(rule, FIT, truth[name, other]))
        elif rule == "fixed-lomo":
            if others:
                source = "the most cautious points of the other members' truth fits"
                out.append(Rule(rule, FIT, conservative_fit(others, source)))
        elif rule == "self":
            out.append(label_free(rule, own_pictures[name, domain]))
        elif rule == "self-other-domain":
            out.append(label_free(rule, own_pictures[name, other]))
        elif rule == "uncalibrated":
            out.append(Rule(rule, NO_PRESENCE))
        elif rule == "guard-1%":
            out.append(Rule(rule, ALL_CANDIDATES, tolerance=0.01))
        elif rule == "guard-0%":
            out.append(Rule(rule, ALL_CANDIDATES, tolerance=0.0))
    return out


def run_rule(encoder: KnownImages, pictures: list, rule: Rule, rounds: int) -> dict:
    """The real analysis of every picture with its prompt under ``rule``, scored."""
    options = ProbeOptions(rounds=rounds, tolerance=rule.tolerance)
    rows, seconds, encodes = [], 0.0, []
    with applied(rule):
        banks = reference_banks(encoder)
        null = encoder.encode_texts([""])[0].numpy().astype(np.float64)[0]
        for picture in pictures:
            start = time.perf_counter()
            report = analyze([picture.image], picture.prompt, encoder, options)
            seconds += time.perf_counter() - start
            if report.pruning is not None:
                encodes.append(report.pruning.full_encodes)
            rows.extend(phrase_rows(report, picture, [picture.image], encoder, banks, null))
    return summarise(evaluate(rows, options.threshold), rule, len(pictures), seconds, encodes)


def summarise(scores: dict, rule: Rule, pictures: int, seconds: float, encodes: list) -> dict:
    """The figures of one (rule, member, domain); ``scores`` is ``bench_advice.evaluate``'s."""
    # Under the rules without a presence of their own it is a constant: no order to score.
    auroc = scores["auroc"].get("presence", {}) if rule.mode == FIT else {}
    verdicts = scores["verdict_share"]
    out = {
        **rule.describe(),
        "pictures": pictures,
        "counts": scores["counts"],
        "presence_auroc": {"objects": auroc.get("objects"), "all": auroc.get("all")},
        "cosine_auroc": {k: scores["auroc"]["cosine"][k] for k in ("objects", "all")},
        "prune_verdict": {label: verdicts[label]["prune"] for label in verdicts},
        "keep": {label: verdicts[label]["keep"] for label in verdicts},
        "pruned_prompt_removes": scores["pruned_share"],
        "verdict_share": verdicts,
        "confusion": scores["confusion"],
        "not_seen": scores.get("not_seen"),
        "analysis_ms_per_picture": 1000 * seconds / max(1, pictures),
        "prompt_variants_per_picture": float(np.mean(encodes)) if encodes else None,
    }
    return _plain(out)


def _plain(value):
    """JSON-ready: NaN as None, numpy numbers as Python ones."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def held_out_check(encoder: KnownImages, member, domain: str, count: int) -> dict:
    """Largest differences between what the engine computes now and the zoo cache, for
    the pictures and for the reference banks: the fits were made from the cache, so both
    must come from the same model read the same way."""
    if not embedding_file(member.name, domain, HELD_OUT).exists():
        return {"cached": False}
    cached = load_embeddings(member.name, domain, HELD_OUT)
    banks = reference_banks(encoder)
    return {
        "cached": True,
        "pictures": float(np.abs(encoder.embeddings.numpy() - cached.images[:count]).max()),
        "bank_phrases": float(np.abs(banks.phrases - cached.neutral).max()),
        "bank_pictures": float(np.abs(banks.images - cached.reference).max()),
    }


def run(args, log=print) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    asked = [m for m in members() if not args.members or m.name in args.members]
    ready = [m for m in asked if is_trained(m)]
    waiting = [m.name for m in asked if not is_trained(m)]
    if waiting:
        log(f"not trained yet, left out: {', '.join(waiting)}")
    if not ready:
        raise SystemExit("no zoo member asked for is trained yet: `python bench/zoo.py status`")
    if len(ready) == 1 and "fixed-lomo" in args.rules:
        log("fixed-lomo needs another member's fits: left out")
    encoders = {}

    def encoder_for(member):
        if member.name not in encoders:
            encoders[member.name] = load_member_encoder(member)
        return encoders[member.name]

    started = time.time()
    truth, own_pictures = member_fits(ready, encoder_for, log)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "members": [m.name for m in ready],
        "not_ready": [m.name for m in members() if not is_trained(m)],
        "pictures": args.pictures,
        "rounds": args.rounds,
        "fits": {
            "truth": {f"{m}/{d}": f.to_dict() for (m, d), f in truth.items()},
            "self": {
                f"{m}/{d}": f if isinstance(f, str) else f.to_dict()
                for (m, d), f in own_pictures.items()
            },
        },
        "checks": {},
        "results": [],
    }
    pictures = {}
    for m in ready:
        encoder = encoder_for(m)
        for domain in args.domains:
            if domain not in pictures:
                pictures[domain] = prompted_pictures(domain, HELD_OUT, args.pictures)
            known = KnownImages(encoder, [p.image for p in pictures[domain]])
            result["checks"][f"{m.name}/{domain}"] = held_out_check(known, m, domain, args.pictures)
            for rule in rules_for(m.name, domain, truth, own_pictures, args.rules):
                start = time.time()
                figures = run_rule(known, pictures[domain], rule, args.rounds)
                figures.update(member=m.name, domain=domain)
                result["results"].append(figures)
                log(
                    f"{m.name} {domain} {rule.name}: {time.time() - start:.0f} s; "
                    f"prune verdict present {_pct(figures['prune_verdict']['present'])}, "
                    f"absent {_pct(figures['prune_verdict']['absent'])}"
                )
    result["seconds"] = round(time.time() - started, 1)
    return result


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", nargs="+", help="only these members (default: all trained)")
    parser.add_argument("--domains", nargs="+", choices=DOMAINS, default=list(DOMAINS))
    parser.add_argument("--rules", nargs="+", choices=RULES, default=list(RULES))
    parser.add_argument(
        "--pictures", type=int, default=PICTURE_COUNT, help="held-out pictures per domain"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args()
    known = {m.name for m in members()}
    unknown = sorted(set(args.members or ()) - known)
    if unknown:
        parser.error(f"no zoo member {', '.join(unknown)}; the zoo: {', '.join(sorted(known))}")
    if not 1 <= args.pictures <= PICTURE_COUNT:
        parser.error(f"--pictures must be 1 to {PICTURE_COUNT}")
    result = run(args, log=lambda message: print(message, file=sys.stderr, flush=True))
    print_report(result, markdown=args.markdown)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
