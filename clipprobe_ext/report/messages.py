"""The one message box of the tab: a note, or an error the user can act on.

Text is escaped; only a fragment this package built itself may go in as markup.
"""

from __future__ import annotations

import html
from typing import Literal

BoxKind = Literal["message", "error"]


def message_box(text: str = "", kind: BoxKind = "message", *, markup: str | None = None) -> str:
    """``text`` (escaped) or ``markup`` (trusted HTML) in a box; errors are announced."""
    body = markup if markup is not None else html.escape(str(text), quote=True)
    extra = ' cp-error" role="alert' if kind == "error" else ""
    return f'<div class="clipprobe-{kind}{extra}">{body}</div>'
