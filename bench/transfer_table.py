"""The transfer benchmark's tables: every figure, a rule-by-model summary, the worst
held-out model and domain per rule against the targets.

The targets hold on every held-out model and domain, so each rule is judged by its worst
case: the pruned prompt removes at most 2 % of present phrases, the prune verdict falls
on at most 2 % of them, and as many absent phrases go as that allows; the label-free fit
(``self``) must also prune at least 80 % of absent phrases and come within 5 points of
the fit from the truth (``own``).
"""

from __future__ import annotations

PRESENT_LIMIT = 0.02
SELF_ABSENT_FLOOR = 0.80
SELF_GAP = 0.05


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def num(x, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table(headers: list[str], rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in [headers, *rows]
    )


def _fit_cell(entry: dict) -> str:
    fit = entry.get("fit")
    if entry["mode"] == "no-presence":
        return "none" + (" (refused)" if entry.get("note") else "")
    if entry["mode"] == "all-candidates":
        return f"all candidates, tol. {entry['tolerance']:.0%}"
    return f"{fit['not_seen_z']:.2f}" + (f" / {fit['absent_z']:.2f}" if "absent_z" in fit else "")


def figures_table(results: list[dict], markdown: bool) -> str:
    headers = [
        "rule",
        "member",
        "domain",
        "not seen under (z) / clearly",
        "presence AUROC objects / all",
        "prune verdict: present / absent / quality %",
        "pruned prompt removes: present / absent %",
        "keep present %",
        "ms a picture",
    ]
    rows = []
    for e in results:
        a, v, r = e["presence_auroc"], e["prune_verdict"], e["pruned_prompt_removes"]
        rows.append(
            [
                e["rule"],
                e["member"],
                e["domain"],
                _fit_cell(e),
                f"{num(a['objects'])} / {num(a['all'])}",
                f"{pct(v['present'])} / {pct(v['absent'])} / {pct(v['quality'])}",
                f"{pct(r['present'])} / {pct(r['absent'])}",
                pct(e["keep"]["present"]),
                f"{e['analysis_ms_per_picture']:.0f}",
            ]
        )
    return table(headers, rows, markdown)


def by_rule(results: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in results:
        out.setdefault(e["rule"], []).append(e)
    return out


def summary_table(results: list[dict], markdown: bool) -> str:
    """Rule x (member, domain): prune verdict on absent / present phrases, percent."""
    places = list(dict.fromkeys((e["member"], e["domain"]) for e in results))
    headers = ["rule"] + [f"{m} {d}" for m, d in places]
    rows = []
    for rule, entries in by_rule(results).items():
        cells = {(e["member"], e["domain"]): e["prune_verdict"] for e in entries}
        row = [rule]
        for place in places:
            v = cells.get(place)
            row.append("" if v is None else f"{pct(v['absent'])} / {pct(v['present'])}")
        rows.append(row)
    return table(headers, rows, markdown)


def worst(entries: list[dict]) -> dict:
    """Per figure, the worst held-out (member, domain) and its value."""

    def pick(figure: str, label: str, highest: bool) -> dict:
        known = [e for e in entries if e[figure][label] is not None]
        if not known:
            return {"value": None, "at": None}
        e = (max if highest else min)(known, key=lambda e: e[figure][label])
        return {"value": e[figure][label], "at": f"{e['member']} {e['domain']}"}

    out = {
        "pruned_present": pick("pruned_prompt_removes", "present", True),
        "prune_verdict_present": pick("prune_verdict", "present", True),
        "pruned_absent": pick("pruned_prompt_removes", "absent", False),
        "prune_verdict_absent": pick("prune_verdict", "absent", False),
    }
    out["present_target_met"] = all(
        out[k]["value"] is not None and out[k]["value"] <= PRESENT_LIMIT
        for k in ("pruned_present", "prune_verdict_present")
    )
    return out


def worst_table(results: list[dict], markdown: bool) -> tuple[str, dict]:
    headers = [
        "rule",
        "worst present pruned (prompt) %",
        "worst present prune verdict %",
        "present ≤ 2 % everywhere",
        "fewest absent pruned (prompt) %",
        "fewest absent prune verdict %",
    ]
    rows, figures = [], {}
    for rule, entries in by_rule(results).items():
        w = figures[rule] = worst(entries)
        cells = {k: f"{pct(v['value'])} ({v['at']})" for k, v in w.items() if isinstance(v, dict)}
        rows.append(
            [
                rule,
                cells["pruned_present"],
                cells["prune_verdict_present"],
                "yes" if w["present_target_met"] else "no",
                cells["pruned_absent"],
                cells["prune_verdict_absent"],
            ]
        )
    return table(headers, rows, markdown), figures


def self_targets(results: list[dict]) -> list[dict]:
    """Per held-out (member, domain): does ``self`` meet its targets, against ``own``?"""
    own = {(e["member"], e["domain"]): e for e in results if e["rule"] == "own"}
    out = []
    for e in results:
        reference = own.get((e["member"], e["domain"]))
        if e["rule"] != "self" or reference is None:
            continue
        absent = e["prune_verdict"]["absent"] or 0.0
        present = max(e["prune_verdict"]["present"] or 0.0, e["pruned_prompt_removes"]["present"])
        gap = (reference["prune_verdict"]["absent"] or 0.0) - absent
        out.append(
            {
                "member": e["member"],
                "domain": e["domain"],
                "absent": absent,
                "present": present,
                "own_absent": reference["prune_verdict"]["absent"],
                "gap": gap,
                "met": absent >= SELF_ABSENT_FLOOR and present <= PRESENT_LIMIT and gap <= SELF_GAP,
            }
        )
    return out


def print_report(result: dict, markdown: bool = False) -> dict:
    """Print every table; returns the worst cases and the label-free fit's targets (also
    written into ``result``)."""
    results = result["results"]
    print(
        f"Synthetic world, small CLIPs (not real CLIPs). {result['date']}; members "
        f"{', '.join(result['members'])} (not trained yet: "
        f"{', '.join(result['not_ready']) or 'none'}); {result['pictures']} held-out pictures "
        f"per domain, {result['rounds']} rounds; {result['seconds']:.0f} s."
    )
    checks = [c for c in result.get("checks", {}).values() if c.get("cached")]
    if checks:
        largest = max(max(c["pictures"], c["bank_phrases"], c["bank_pictures"]) for c in checks)
        print(
            f"The engine's picture and bank embeddings against the zoo cache the fits were "
            f"made from: largest difference {largest:.2g} ({len(checks)} member/domain pairs)."
        )
    print("\nEvery figure (prune verdict and pruned prompt: share of each truth label):\n")
    print(figures_table(results, markdown))
    print("\nPrune verdict on absent / present phrases, percent (rule x held-out model):\n")
    print(summary_table(results, markdown))
    text, worst_cases = worst_table(results, markdown)
    print("\nWorst held-out model and domain per rule:\n")
    print(text)
    targets = self_targets(results)
    if targets:
        met = sum(t["met"] for t in targets)
        print(
            f"\nself (label-free) against its targets (absent ≥ 80 %, present ≤ 2 %, within 5 "
            f"points of own): met on {met} of {len(targets)}"
        )
        for t in targets:
            print(
                f"  {t['member']} {t['domain']}: absent {pct(t['absent'])} % (own "
                f"{pct(t['own_absent'])} %), present {pct(t['present'])} %"
                + ("" if t["met"] else "  <- not met")
            )
    result["worst"] = worst_cases
    result["self_targets"] = targets
    return {"worst": worst_cases, "self_targets": targets}
