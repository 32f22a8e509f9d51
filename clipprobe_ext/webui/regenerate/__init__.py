"""Generate a picture again with another prompt, the way the WebUI would, and compare.

- ``plan``: pure, from the picture's parameters and the prompt to the txt2img request.
- ``checkpoint``: the picture's checkpoint against the loaded one.
- ``run``: reading the parameters through the WebUI, generating under the session, and
  comparing (over several seeds too), and the bring-in's variants generated the same
  way; its public functions are re-exported here for the tab.

The HTTP routes, ``POST /clipprobe/v1/regenerate`` and ``/bring-in``, are in ``webui.api``
with the others.
"""

from clipprobe_ext.webui.regenerate.checkpoint import check_checkpoint
from clipprobe_ext.webui.regenerate.plan import CheckpointCheck, RegenerationPlan, is_img2img
from clipprobe_ext.webui.regenerate.run import (
    JOB,
    BringInRun,
    Regeneration,
    SeedConfirmation,
    bring_in,
    generate,
    original_picture,
    plan_regeneration,
    read_parameters,
    regenerate,
    regenerate_and_compare,
)

__all__ = [
    "JOB",
    "BringInRun",
    "SeedConfirmation",
    "bring_in",
    "CheckpointCheck",
    "Regeneration",
    "RegenerationPlan",
    "check_checkpoint",
    "generate",
    "is_img2img",
    "original_picture",
    "plan_regeneration",
    "read_parameters",
    "regenerate",
    "regenerate_and_compare",
]
