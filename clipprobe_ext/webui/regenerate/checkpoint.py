"""The picture's checkpoint against the loaded one, and the one to load for a regeneration.

``match_checkpoint`` is the rule (pure: the loaded ``CheckpointInfo`` and the WebUI's
alias table come in); ``check_checkpoint`` asks the WebUI for both.  A checkpoint is
matched by the infotext's "Model hash" (the short sha256, or the old 8-character hash of
a file whose sha256 is not computed yet), else by its "Model" name; a same-named file
whose known hash differs is another checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clipprobe_ext.webui import host
from clipprobe_ext.webui.regenerate.plan import CheckpointCheck


def hash_matches(info: Any, wanted: str) -> bool:
    wanted = wanted.strip().lower()
    if not wanted:
        return False
    for attr in ("shorthash", "hash"):
        value = getattr(info, attr, None)
        if value and value.lower() == wanted:
            return True
    sha = getattr(info, "sha256", None)
    return bool(sha) and sha.lower().startswith(wanted)


def check_checkpoint(
    wanted_hash: str | None, wanted_name: str | None, switch: bool = True
) -> CheckpointCheck:
    """``match_checkpoint`` against the WebUI's loaded checkpoint and its alias table."""
    return match_checkpoint(
        host.loaded_checkpoint(), host.checkpoint_aliases(), wanted_hash, wanted_name, switch
    )


def match_checkpoint(
    loaded: Any,
    aliases: Mapping[str, Any],
    wanted_hash: str | None,
    wanted_name: str | None,
    switch: bool = True,
) -> CheckpointCheck:
    """Compare the infotext's checkpoint with ``loaded``; find it in ``aliases`` when they
    differ (status "switch": load it for the run; with ``switch=False`` "kept": it exists
    but the loaded one is used)."""
    loaded_title = getattr(loaded, "title", None)
    loaded_hash = getattr(loaded, "shorthash", None) or getattr(loaded, "hash", None)
    wanted = f"{wanted_name or '?'} [{wanted_hash}]" if wanted_hash else (wanted_name or "")

    def result(status: str, message: str, use: str | None = None) -> CheckpointCheck:
        return CheckpointCheck(
            wanted_hash, wanted_name, loaded_title, loaded_hash, status, use, message
        )

    if not wanted_hash and not wanted_name:
        return result(
            "unknown",
            "The picture's parameters do not name its checkpoint: it is regenerated with "
            f"the loaded one ({loaded_title or 'none loaded yet'}).",
        )
    if loaded is not None and (
        (wanted_hash and hash_matches(loaded, wanted_hash))
        or (not wanted_hash and wanted_name in getattr(loaded, "ids", ()))
    ):
        return result("same", f"The loaded checkpoint is the picture's ({loaded_title}).")
    found = aliases.get(wanted_hash) if wanted_hash else None
    how = "by its hash"
    if found is None and wanted_name:
        candidate = aliases.get(wanted_name)
        # A same-named file whose hash is known and differs is another checkpoint.
        if candidate is not None and not (
            wanted_hash
            and getattr(candidate, "shorthash", None)
            and not hash_matches(candidate, wanted_hash)
        ):
            found, how = candidate, "by its name only (its hash is not computed yet)"
    current = loaded_title or "none loaded yet"
    if found is not None and not switch:
        return result(
            "kept",
            f"The loaded checkpoint ({current}) is not the picture's ({wanted}); it is used "
            "anyway, as asked, so differences can come from the model too.",
        )
    if found is not None:
        return result(
            "switch",
            f"The loaded checkpoint ({current}) is not the picture's ({wanted}): "
            f"{found.title}, found {how}, is loaded for this run.",
            found.title,
        )
    return result(
        "missing" if loaded is not None else "no model",
        f"The loaded checkpoint ({current}) is not the picture's ({wanted}), which this "
        "WebUI does not have: it is regenerated with the loaded one, so differences can "
        "come from the model too.",
    )
