"""Every output a person or a program reads, written from the analysis' numbers and codes.

One place turns results into words: ``numbers`` (the one number format), ``reasons``
(codes to sentences), ``view`` (a report's sections, formatted once), then the outputs:
``text`` (terminal table), ``data`` (JSON and CSV), ``fragments`` (the tab's HTML and its
message box), ``panel`` (the tab's answer first, its sections after), ``summary`` (the
infotext lines), ``audit`` and ``audit_page`` (the audit's table, CSV, JSON and HTML
page), ``comparison`` (the regeneration's page and picture).
This package imports nothing at import time, so ``options`` can use ``numbers``.
"""
