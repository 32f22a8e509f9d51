"""The ``clipprobe`` command: ``clipprobe IMAGE...`` analyses, ``clipprobe audit DIR...``
audits a folder, ``clipprobe calibrate DIR...`` fits a model on your pictures,
``clipprobe COMMAND --help`` says more (``app`` lists the commands).

``main`` is the console script's entry point and ``python -m clipprobe_ext``'s.  This
module imports nothing at the top, so that a Ctrl-C while the command line's modules are
still being imported exits with status 130 and one line, like a Ctrl-C during the run
(not by the signal, with a traceback).
"""


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    import sys

    try:
        from clipprobe_ext.cli.app import run
    except KeyboardInterrupt:
        sys.stderr.write("clipprobe: interrupted\n")
        return 130
    return run(sys.argv[1:] if argv is None else argv)
