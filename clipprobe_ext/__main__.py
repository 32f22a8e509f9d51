"""``python -m clipprobe_ext``: the command line.

A Ctrl-C while the command line's modules are still being imported exits with status
130 and one line, like a Ctrl-C during the run (not by the signal, with a traceback).
"""

import sys

try:
    from clipprobe_ext.cli import main
except KeyboardInterrupt:
    sys.stderr.write("clipprobe: interrupted\n")
    raise SystemExit(130) from None

raise SystemExit(main())
