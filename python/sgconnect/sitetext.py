"""Text that came from the site, made safe for a terminal and for one-line error messages.

A display name, a REST error's ``title`` and ``detail``, an api3 fault's message, a tk-core
exception's text: any of them may hold ANSI escape sequences (``\\x1b[31m``, an OSC title or
hyperlink), control characters, bidirectional overrides or line breaks. Printed raw, they recolour
or rewrite the terminal, or forge a second line of output (a fake "login: admin" line in a
``whoami``, a fake audit line). :func:`neutralize` is the one function that removes them; it is
applied to every error message (:class:`sgconnect.errors.SgConnectError`), to the display name
read from the site, and to everything the command line prints.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

__all__ = ["neutralize"]

#: ANSI/ECMA-48 escape sequences: CSI (``ESC [`` or U+009B ... final byte), OSC/DCS/APC/PM/SOS
#: strings (up to BEL or ST), and two-character escapes.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]P_^X]|[\x9d\x90\x9f\x9e\x98])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
#: Characters that break a line: they become a space, so words stay apart.
_LINE_BREAKS = frozenset("\n\r\t\v\f\x85\u2028\u2029")


def neutralize(text: Any) -> str:
    """``text`` without escape sequences, control or format characters, and on one line.

    Line breaks and tabs become a space; every other control (``Cc``), format (``Cf``: bidi
    overrides, zero-width characters) and unassigned-surrogate (``Cs``) character is dropped.
    Printable text, accents and other scripts included, is kept as it is. Non-``str`` input is
    converted with ``str()`` first. Pure.
    """
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable():  # the common case: nothing to do
        return text
    text = _ESCAPES.sub("", text)
    out = []
    for char in text:
        if char in _LINE_BREAKS:
            out.append(" ")
        elif char.isprintable() or char == " ":
            out.append(char)
        elif unicodedata.category(char) in ("Zs",):
            out.append(" ")
        # else: Cc, Cf, Cs, Co, Cn: dropped
    return "".join(out)
