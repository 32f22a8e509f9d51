"""``python -m clipprobe_ext``: the ``clipprobe`` command (``clipprobe_ext.cli``)."""

from clipprobe_ext.cli import main

raise SystemExit(main())
