"""Mirrors modules/errors.py of AUTOMATIC1111 v1.10.1 (report, display, run)."""

reported = []


def report(message, *, exc_info=False):
    reported.append(message)


def display(e, task, *, full_traceback=False):
    reported.append(f"{task}: {e}")


def run(code, task):
    try:
        code()
    except Exception as e:
        display(e, task)
