"""ClipProbe's entry file: the one file the WebUI loads from this extension.

While the WebUI loads scripts (``modules.scripts.load_scripts``) the extension folder is
first on ``sys.path``, so ``clipprobe_ext`` imports from here; later imports of its
submodules go through the already imported package.  The WebUI collects every
``modules.scripts.Script`` subclass found in this module's namespace: that is how it finds
``ClipProbeScript`` (the always-visible "probe after generation" section), defined here on
the Script class ``host`` hands over.
"""

from clipprobe_ext.webui import callbacks, host
from clipprobe_ext.webui.always_visible import ProbeAfterGeneration


class ClipProbeScript(ProbeAfterGeneration, host.script_base()):
    """'ClipProbe: probe after generation' in txt2img and img2img (``always_visible``)."""


callbacks.register()
