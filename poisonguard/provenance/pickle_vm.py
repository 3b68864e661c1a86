"""Analyse a pickle by emulating CPython's C unpickler, without running anything.

:func:`analyse_pickle` walks the opcodes exactly as ``_pickle.c``'s ``load`` does:
the same object stack with its mark stack and fence (``MARK``, ``POP`` that pops a
mark when one sits on top, ``POP_MARK``, ``DUP``), the same memo (``PUT``/``GET``,
``MEMOIZE`` at ``len(memo)``), the same argument parsing. Values are abstract: the
exact ``str`` for every string opcode (so ``STACK_GLOBAL`` takes its module and name
from the real stack, not from the last strings seen), a :class:`Imported` name for
``GLOBAL``/``STACK_GLOBAL``/``INST``, and an opaque :class:`Opaque` for the rest.

It **fails closed**: the result is refused (``Verdict.refusals`` non-empty) when

- a name is imported that is not in the caller's allowlist (``GLOBAL``, ``INST``,
  ``STACK_GLOBAL``), or any name through the extension registry (``EXT1/2/4``);
- ``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``OBJ`` call something other than an
  allowlisted import, or ``BUILD`` updates an imported class or function;
- an argument is written in a form the analyser does not parse exactly as the C
  unpickler does (e.g. ``INT`` ``0x3e9``: ``strtol`` base 0 reads hex and octal),
  a ``STRING`` whose value depends on the unpickler's encoding, out-of-band buffers;
- the stream breaks the unpickler's rules (unknown opcode, stack underflow, missing
  memo entry, truncation), or exceeds the operation budget or deadline.
"""

from __future__ import annotations

import codecs
import re
import struct
import time
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Imported", "Opaque", "PickleRefused", "Verdict", "analyse_pickle"]

_HIGHEST_PROTOCOL = 5
_DECIMAL = re.compile(rb"0|-?[1-9][0-9]*")  # what strtol(base 0) and int() read alike
_INDEX = re.compile(rb"0|[1-9][0-9]*")


class PickleRefused(Exception):
    """The stream cannot be analysed exactly (or breaks a limit): refuse the file.

    ``refusals`` holds what was refused before the analysis had to stop.
    """

    refusals: list[str] = []


@dataclass(frozen=True)
class Imported:
    """A name the unpickler would import (``module``, ``name``) after compat mapping."""

    module: str
    name: str

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(frozen=True)
class Opaque:
    """Any other value: only its kind is known."""

    kind: str


@dataclass
class Verdict:
    """What one pickle would do: names imported, calls, refusals, where it ended."""

    end: int
    imports: list[tuple[int, str, str]] = field(default_factory=list)  # (offset, opcode, name)
    calls: Counter[str] = field(default_factory=Counter)
    refusals: list[str] = field(default_factory=list)


_Value = str | Imported | Opaque


class _Machine:
    def __init__(self, data: bytes, pos: int, allowed: Callable[[str, str], bool],
                 max_ops: int, deadline: float) -> None:
        self.data, self.pos, self.allowed = data, pos, allowed
        self.max_ops, self.deadline = max_ops, deadline
        self.stack: list[_Value] = []
        self.marks: list[int] = []
        self.memo: dict[int, _Value] = {}
        self.proto = 0
        self.op_pos = pos
        self.verdict = Verdict(end=pos)

    # --- reading -------------------------------------------------------------
    def read(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PickleRefused("truncated: the pickle ends inside an opcode's argument")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def readline(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise PickleRefused("truncated: a text argument has no newline")
        line = self.data[self.pos:end]
        self.pos = end + 1
        return line

    def uint(self, n: int) -> int:
        return int.from_bytes(self.read(n), "little")

    def sint4(self) -> int:
        return int(struct.unpack("<i", self.read(4))[0])

    # --- the stack, as _pickle.c's Pdata with its fence ----------------------
    @property
    def fence(self) -> int:
        return self.marks[-1] if self.marks else 0

    def push(self, value: _Value) -> None:
        self.stack.append(value)

    def pop(self) -> _Value:
        if len(self.stack) <= self.fence:
            raise PickleRefused("stack underflow")
        return self.stack.pop()

    def top(self) -> _Value:
        if len(self.stack) <= self.fence:
            raise PickleRefused("stack underflow")
        return self.stack[-1]

    def marker(self) -> int:
        if not self.marks:
            raise PickleRefused("could not find MARK")
        return self.marks.pop()

    def pop_to(self, start: int) -> None:
        if start < self.fence or start > len(self.stack):
            raise PickleRefused("stack underflow")
        del self.stack[start:]

    def pop_n(self, n: int) -> None:
        self.pop_to(len(self.stack) - n)

    # --- names ---------------------------------------------------------------
    def imported(self, opcode: str, module: str, name: str) -> Imported:
        if self.proto < 3:
            if (module, name) in NAME_MAPPING:
                module, name = NAME_MAPPING[(module, name)]
            elif module in IMPORT_MAPPING:
                module = IMPORT_MAPPING[module]
        found = Imported(module, name)
        self.verdict.imports.append((self.op_pos, opcode, found.dotted))
        if "." in name or not self.allowed(module, name):
            self.refuse(f"{opcode} at byte {self.op_pos} imports {found.dotted} "
                        "(not allowlisted)")
        return found

    def refuse(self, message: str) -> None:
        self.verdict.refusals.append(message)

    def call(self, opcode: str, target: _Value) -> None:
        self.verdict.calls[opcode] += 1
        if not isinstance(target, Imported):
            self.refuse(f"{opcode} at byte {self.op_pos} calls a value that is not an "
                        "allowlisted import")

    # --- text arguments parsed only in forms the C unpickler reads the same -------
    def text_int(self, what: str, pattern: re.Pattern[bytes]) -> int:
        line = self.readline()
        if what == "LONG" and line.endswith(b"L"):
            line = line[:-1]
        if what == "INT" and line in (b"00", b"01"):
            return int(line)
        if not pattern.fullmatch(line):
            raise PickleRefused(f"{what} argument {line[:40]!r} is not plain decimal (the C "
                                "unpickler may read it differently)")
        return int(line)

    def text_str(self, encoding: str) -> str:
        line = self.readline()
        try:
            return line.decode(encoding)
        except UnicodeDecodeError:
            raise PickleRefused(f"a text argument is not {encoding}") from None

    def ascii_str(self, raw: bytes) -> str:
        if not raw.isascii():
            raise PickleRefused("a byte string that becomes str only under the unpickler's "
                                "encoding (non-ASCII BINSTRING/STRING)")
        return raw.decode("ascii")

    # --- the loop --------------------------------------------------------------
    def run(self) -> Verdict:
        ops = 0
        while True:
            ops += 1
            if ops > self.max_ops or (ops & 0xFFF == 0 and time.monotonic() > self.deadline):
                raise PickleRefused("the pickle exceeds the analysis budget (operations or "
                                    "time); refusing it")
            self.op_pos = self.pos
            code = self.read(1)
            handler = _HANDLERS.get(code)
            if handler is None:
                raise PickleRefused(f"invalid opcode {code!r}")
            if handler(self):
                self.verdict.end = self.pos
                return self.verdict


def _stop(m: _Machine) -> bool:
    m.pop()
    if m.stack or m.marks:
        raise PickleRefused("values left on the stack at STOP")
    return True


def _pop(m: _Machine) -> None:
    if m.marks and m.marks[-1] == len(m.stack):
        m.marks.pop()
    else:
        m.pop()


def _pop_mark(m: _Machine) -> None:
    m.pop_to(m.marker())


def _persid(m: _Machine) -> None:
    m.text_str("ascii")
    m.push(Opaque("persistent"))


def _binpersid(m: _Machine) -> None:
    m.pop()
    m.push(Opaque("persistent"))


def _reduce(m: _Machine) -> None:
    m.pop()
    m.call("REDUCE", m.pop())
    m.push(Opaque("object"))


def _string(m: _Machine) -> None:
    line = m.readline()
    if len(line) < 2 or line[0] != line[-1] or line[:1] not in (b"'", b'"'):
        raise PickleRefused("the STRING opcode argument must be quoted")
    try:
        raw = codecs.escape_decode(line[1:-1])[0]
    except ValueError:
        raise PickleRefused("bad escape in a STRING argument") from None
    m.push(m.ascii_str(raw))


def _unicode(m: _Machine) -> None:
    line = m.readline()
    try:
        m.push(codecs.raw_unicode_escape_decode(line)[0])
    except UnicodeDecodeError:
        raise PickleRefused("bad escape in a UNICODE argument") from None


def _binunicode(size: int) -> Callable[[_Machine], None]:
    def load(m: _Machine) -> None:
        raw = m.read(m.uint(size))
        try:
            m.push(raw.decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:
            raise PickleRefused("a BINUNICODE argument is not UTF-8") from None
    return load


def _binstring(size: int) -> Callable[[_Machine], None]:
    def load(m: _Machine) -> None:
        n = m.sint4() if size == 4 else m.uint(1)
        if n < 0:
            raise PickleRefused("BINSTRING has a negative byte count")
        m.push(m.ascii_str(m.read(n)))
    return load


def _append_to(m: _Machine, x: int) -> None:
    if x > len(m.stack) or x <= m.fence:
        raise PickleRefused("stack underflow")
    del m.stack[x:]


def _appends(m: _Machine) -> None:
    _append_to(m, m.marker())


def _setitems_to(m: _Machine, x: int) -> None:
    if x > len(m.stack) or x <= m.fence:
        raise PickleRefused("stack underflow")
    if (len(m.stack) - x) % 2:
        raise PickleRefused("odd number of items for SETITEMS")
    del m.stack[x:]


def _build(m: _Machine) -> None:
    m.pop()
    target = m.top()
    m.verdict.calls["BUILD"] += 1
    if isinstance(target, Imported):
        m.refuse(f"BUILD at byte {m.op_pos} changes the attributes of {target.dotted}")


def _global(m: _Machine) -> None:
    module, name = m.text_str("utf-8"), m.text_str("utf-8")
    m.push(m.imported("GLOBAL", module, name))


def _stack_global(m: _Machine) -> None:
    name, module = m.pop(), m.pop()
    if not isinstance(module, str) or not isinstance(name, str):
        raise PickleRefused(f"STACK_GLOBAL at byte {m.op_pos} takes a name that is not a "
                            "string the analyser can read")
    m.push(m.imported("STACK_GLOBAL", module, name))


def _inst(m: _Machine) -> None:
    start = m.marker()
    module, name = m.text_str("ascii"), m.text_str("ascii")
    target = m.imported("INST", module, name)
    m.pop_to(start)
    m.call("INST", target)
    m.push(Opaque("object"))


def _obj(m: _Machine) -> None:
    start = m.marker()
    if len(m.stack) - start < 1:
        raise PickleRefused("stack underflow")
    target = m.stack[start]
    m.pop_to(start)
    m.call("OBJ", target)
    m.push(Opaque("object"))


def _newobj(m: _Machine) -> None:
    m.pop()
    m.call("NEWOBJ", m.pop())
    m.push(Opaque("object"))


def _newobj_ex(m: _Machine) -> None:
    m.pop()
    m.pop()
    m.call("NEWOBJ_EX", m.pop())
    m.push(Opaque("object"))


def _get(index: Callable[[_Machine], int]) -> Callable[[_Machine], None]:
    def load(m: _Machine) -> None:
        i = index(m)
        if i not in m.memo:
            raise PickleRefused(f"memo value not found at index {i}")
        m.push(m.memo[i])
    return load


def _put(index: Callable[[_Machine], int]) -> Callable[[_Machine], None]:
    def load(m: _Machine) -> None:
        i = index(m)
        m.memo[i] = m.top()
    return load


def _memoize(m: _Machine) -> None:
    m.memo[len(m.memo)] = m.top()


def _collect(kind: str) -> Callable[[_Machine], None]:
    def load(m: _Machine) -> None:
        start = m.marker()
        if kind == "dict" and (len(m.stack) - start) % 2:
            raise PickleRefused("odd number of items for DICT")
        m.pop_to(start)
        m.push(Opaque(kind))
    return load


def _tuple_n(n: int) -> Callable[[_Machine], None]:
    def load(m: _Machine) -> None:
        m.pop_n(n)
        m.push(Opaque("tuple"))
    return load


def _proto(m: _Machine) -> None:
    p = m.uint(1)
    if p > _HIGHEST_PROTOCOL:
        raise PickleRefused(f"unsupported pickle protocol {p}")
    m.proto = p


def _frame(m: _Machine) -> None:
    n = m.uint(8)
    if n > len(m.data) - m.pos:
        raise PickleRefused("a FRAME runs past the end of the data")


def _ext(size: int) -> Callable[[_Machine], None]:
    def load(m: _Machine) -> None:
        code = m.uint(size)
        m.refuse(f"EXT{size} at byte {m.op_pos} imports extension code {code}")
        m.push(Opaque("extension"))
    return load


def _skip_push(nbytes: Callable[[_Machine], int], kind: str) -> Callable[[_Machine], None]:
    def load(m: _Machine) -> None:
        m.read(nbytes(m))
        m.push(Opaque(kind))
    return load


def _long4(m: _Machine) -> None:
    n = m.sint4()
    if n < 0:
        raise PickleRefused("LONG4 has a negative byte count")
    m.read(n)
    m.push(Opaque("int"))


def _refuse_op(name: str) -> Callable[[_Machine], None]:
    def load(m: _Machine) -> None:
        raise PickleRefused(f"{name} (out-of-band buffers) is not supported")
    return load


def _push(kind: str) -> Callable[[_Machine], None]:
    return lambda m: m.push(Opaque(kind))


def _text_int_push(what: str) -> Callable[[_Machine], None]:
    def load(m: _Machine) -> None:
        m.text_int(what, _DECIMAL)
        m.push(Opaque("int"))
    return load


def _float(m: _Machine) -> None:
    line = m.readline()
    try:
        float(line)
    except ValueError:
        raise PickleRefused("FLOAT argument is not a number") from None
    if b"_" in line or line != line.strip():
        raise PickleRefused("FLOAT argument in a form the C unpickler may read differently")
    m.push(Opaque("float"))


_HANDLERS: dict[bytes, Callable[[_Machine], bool | None]] = {
    b"(": lambda m: m.marks.append(len(m.stack)),
    b".": _stop,
    b"0": _pop,
    b"1": _pop_mark,
    b"2": lambda m: m.push(m.top()),
    b"F": _float,
    b"I": _text_int_push("INT"),
    b"J": _skip_push(lambda m: 4, "int"),
    b"K": _skip_push(lambda m: 1, "int"),
    b"M": _skip_push(lambda m: 2, "int"),
    b"L": _text_int_push("LONG"),
    b"\x8a": _skip_push(lambda m: m.uint(1), "int"),
    b"\x8b": _long4,
    b"N": _push("None"),
    b"P": _persid,
    b"Q": _binpersid,
    b"R": _reduce,
    b"S": _string,
    b"T": _binstring(4),
    b"U": _binstring(1),
    b"V": _unicode,
    b"X": _binunicode(4),
    b"\x8c": _binunicode(1),
    b"\x8d": _binunicode(8),
    b"a": lambda m: _append_to(m, len(m.stack) - 1),
    b"e": _appends,
    b"b": _build,
    b"c": _global,
    b"d": _collect("dict"),
    b"}": _push("dict"),
    b"]": _push("list"),
    b")": _push("tuple"),
    b"\x8f": _push("set"),
    b"g": _get(lambda m: m.text_int("GET", _INDEX)),
    b"h": _get(lambda m: m.uint(1)),
    b"j": _get(lambda m: m.uint(4)),
    b"i": _inst,
    b"l": _collect("list"),
    b"o": _obj,
    b"p": _put(lambda m: m.text_int("PUT", _INDEX)),
    b"q": _put(lambda m: m.uint(1)),
    b"r": _put(lambda m: m.uint(4)),
    b"\x94": _memoize,
    b"s": lambda m: _setitems_to(m, len(m.stack) - 2),
    b"u": lambda m: _setitems_to(m, m.marker()),
    b"t": _collect("tuple"),
    b"\x85": _tuple_n(1),
    b"\x86": _tuple_n(2),
    b"\x87": _tuple_n(3),
    b"G": _skip_push(lambda m: 8, "float"),
    b"\x80": _proto,
    b"\x81": _newobj,
    b"\x92": _newobj_ex,
    b"\x82": _ext(1),
    b"\x83": _ext(2),
    b"\x84": _ext(4),
    b"\x88": _push("bool"),
    b"\x89": _push("bool"),
    b"B": _skip_push(lambda m: m.uint(4), "bytes"),
    b"C": _skip_push(lambda m: m.uint(1), "bytes"),
    b"\x8e": _skip_push(lambda m: m.uint(8), "bytes"),
    b"\x96": _skip_push(lambda m: m.uint(8), "bytearray"),
    b"\x90": lambda m: _append_to(m, m.marker()),
    b"\x91": _collect("frozenset"),
    b"\x93": _stack_global,
    b"\x95": _frame,
    b"\x97": _refuse_op("NEXT_BUFFER"),
    b"\x98": _refuse_op("READONLY_BUFFER"),
}


def analyse_pickle(
    data: bytes, *, start: int = 0, allowed: Callable[[str, str], bool],
    max_ops: int = 50_000_000, deadline: float | None = None,
) -> Verdict:
    """Emulate loading the pickle that begins at ``data[start]``.

    ``allowed(module, name)`` says whether an import may happen. Raises
    :class:`PickleRefused` when the stream cannot be analysed exactly; otherwise the
    :class:`Verdict` lists the imports, calls and refusals, and where the pickle ended.

    Examples
    --------
    >>> import pickle
    >>> v = analyse_pickle(pickle.dumps({"a": [1, 2]}), allowed=lambda m, n: False)
    >>> v.refusals, v.end == len(pickle.dumps({"a": [1, 2]}))
    ([], True)
    """
    limit = time.monotonic() + 60.0 if deadline is None else deadline
    machine = _Machine(data, start, allowed, max_ops, limit)
    try:
        return machine.run()
    except PickleRefused as exc:
        exc.refusals = list(machine.verdict.refusals)
        raise
