"""ClipProbe's entry file: the one file the WebUI loads from this extension.

While the WebUI loads scripts (``modules.scripts.load_scripts``) the extension folder is
first on ``sys.path``, so ``clipprobe_ext`` imports from here; later imports of its
submodules go through the already imported package.  The WebUI collects every
``modules.scripts.Script`` subclass found in this module's namespace: that is how it finds
``ClipProbeScript`` (the always-visible "probe after generation" section).
"""

from clipprobe_ext.webui import callbacks
from clipprobe_ext.webui.always_visible import ClipProbeScript  # noqa: F401  (found by the WebUI)

callbacks.register()
