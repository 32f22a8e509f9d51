"""``python -m clipprobe_ext``: the command line."""

from clipprobe_ext.cli import main

raise SystemExit(main())
