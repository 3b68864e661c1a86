"""Make untrusted text safe for a terminal: control characters become escapes.

Row ids, column names, file and member names, pickle import names and ledger fields
come from files an attacker may have written. Printed raw, an ANSI sequence can
repaint a line (a failed ``verify`` shown as ``OK``) and a newline can forge one.
:func:`printable` escapes every C0 and C1 control character, DEL, and the Unicode
bidirectional overrides, as ``\\xNN`` / ``\\uNNNN``; everything else is unchanged.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """``str(value)`` with control characters escaped.

    Examples
    --------
    >>> printable("ok\\x1b[2K\\rOK")
    'ok\\\\x1b[2K\\\\x0dOK'
    """
    return _UNSAFE.sub(_escape, str(value))
