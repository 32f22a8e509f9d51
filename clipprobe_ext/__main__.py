"""``python -m clipprobe_ext``: the command line (``audit`` is its own command).

A Ctrl-C while the command line's modules are still being imported exits with status
130 and one line, like a Ctrl-C during the run (not by the signal, with a traceback).
"""

import sys

try:
    if sys.argv[1:2] == ["audit"]:
        from clipprobe_ext.audit.cli import main as audit_main

        def main() -> int:
            return audit_main(sys.argv[2:])

    else:
        from clipprobe_ext.cli import main
except KeyboardInterrupt:
    sys.stderr.write("clipprobe: interrupted\n")
    raise SystemExit(130) from None

raise SystemExit(main())
