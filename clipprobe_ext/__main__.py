"""``python -m clipprobe_ext``: the command line (``audit`` is its own command)."""

import sys

if sys.argv[1:2] == ["audit"]:
    from clipprobe_ext.audit.cli import main as audit_main

    raise SystemExit(audit_main(sys.argv[2:]))

from clipprobe_ext.cli import main  # noqa: E402

raise SystemExit(main())
