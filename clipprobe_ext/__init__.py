"""ClipProbe: ask CLIP which words of a prompt actually show up in the picture.

As a library::

    import clipprobe_ext as clipprobe
    clip = clipprobe.load_encoder("openai/clip-vit-base-patch32")
    report = clipprobe.analyze("pic.png", "a red star, a blue ring, masterpiece", clip)
    print(clipprobe.format_table(report))

``audit(folders, clip)`` and ``compare(report, original, regenerated, pruned, clip)`` are
the folder audit and the regeneration's numbers.  The engine (this package, minus
``webui/``) never imports the WebUI or gradio.  Importing it loads no model and no torch:
the functions import their modules when called, the types on first use, so the
``clipprobe`` command starts fast.

``audit`` and ``compare`` share their names with the subpackage ``clipprobe_ext.audit``
and the module ``clipprobe_ext.compare``: the package keeps the functions under those
names when the modules are imported (reach the modules with ``from clipprobe_ext.audit.X
import Y``, as the engine does).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from clipprobe_ext.lazy import lazy_exports

if TYPE_CHECKING:
    from PIL import Image

    from clipprobe_ext.audit.options import AuditOptions
    from clipprobe_ext.audit.results import AuditReport
    from clipprobe_ext.compare import Comparison
    from clipprobe_ext.encoders.base import ClipEncoder
    from clipprobe_ext.options import ProbeOptions
    from clipprobe_ext.results import ProbeReport

    ImageInput = str | os.PathLike | Image.Image

__version__ = "0.1.0"

# The types the four functions take and return, imported on first use.
_TYPES = {
    "ClipEncoder": "clipprobe_ext.encoders.base",
    "ProbeOptions": "clipprobe_ext.options",
    "ProbeReport": "clipprobe_ext.results",
    "AuditOptions": "clipprobe_ext.audit.options",
    "AuditReport": "clipprobe_ext.audit.results",
    "Comparison": "clipprobe_ext.compare",
    "ClipProbeError": "clipprobe_ext.errors",
    "format_table": "clipprobe_ext.report.text",
    "report_data": "clipprobe_ext.report.data",
}

__all__ = ["__version__", "analyze", "audit", "compare", "load_encoder", *sorted(_TYPES)]


def load_encoder(name: str, device: Any = None) -> ClipEncoder:
    """The CLIP named ``name``: a transformers hub name or local folder, or
    ``openai-clip:ViT-L/14``; ``device`` defaults to CUDA when available.  Loaded once per
    process (``encoders.factory.load_encoder``, which has the other options)."""
    from clipprobe_ext.encoders.factory import load_encoder as load

    return load(name, device)


def analyze(
    images: ImageInput | Sequence[ImageInput],
    prompt: str,
    encoder: ClipEncoder,
    options: ProbeOptions | None = None,
    *,
    negative: str = "",
) -> ProbeReport:
    """Which phrases of ``prompt`` CLIP sees in ``images`` (one picture or several: a
    batch of one prompt); each a path or a PIL image.  ``probe.analyze`` on the pictures
    as ``images.load_image`` reads them, labelled by file name."""
    from clipprobe_ext.probe import analyze as probe

    pictures, labels = _pictures(images)
    return probe(pictures, prompt, encoder, options, labels, negative=negative)


def audit(
    folders: str | os.PathLike | Sequence[str | os.PathLike],
    encoder: ClipEncoder,
    options: AuditOptions | None = None,
) -> AuditReport:
    """How often each phrase of the folders' prompts is seen in their pictures
    (``audit.pipeline.run_audit``, which also takes progress and stop callbacks)."""
    from clipprobe_ext.audit.pipeline import run_audit

    paths = [folders] if isinstance(folders, str | os.PathLike) else list(folders)
    return run_audit(paths, encoder, options)


def compare(
    report: ProbeReport,
    original: ImageInput,
    regenerated: ImageInput,
    pruned_prompt: str,
    encoder: ClipEncoder,
) -> Comparison:
    """Did ``pruned_prompt`` still make the same picture: both pictures measured against
    ``report``'s prompt and the pruned one with the report's model (``compare.compare``)."""
    from clipprobe_ext.compare import compare as measure
    from clipprobe_ext.images import load_image

    return measure(report, load_image(original), load_image(regenerated), pruned_prompt, encoder)


def _pictures(images: ImageInput | Sequence[ImageInput]) -> tuple[list[Image.Image], list[str]]:
    """The pictures as RGB, and their labels (a file's name; ``image N`` otherwise)."""
    from PIL import Image

    from clipprobe_ext.images import load_image

    sources = [images] if isinstance(images, str | os.PathLike | Image.Image) else list(images)
    labels = [
        os.path.basename(os.fspath(s)) if isinstance(s, str | os.PathLike) else f"image {i + 1}"
        for i, s in enumerate(sources)
    ]
    return [load_image(s) for s in sources], labels


class _Package(types.ModuleType):
    """This package, whose facade functions are not replaced by the submodules of the same
    name when those are imported (the import system binds a submodule on its parent)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("audit", "compare") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__getattr__ = lazy_exports(__name__, _TYPES)
