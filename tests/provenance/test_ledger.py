"""The hash-chained ledger, the same tests on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from poisonguard.provenance.ledger import (
    GENESIS,
    Ledger,
    LedgerEntry,
    LedgerLockedError,
    record_event,
    resolve_location,
)

# Children are forked (the package is already imported): separate processes, each with
# its own connections, without paying the interpreter start-up again.
_FORK = multiprocessing.get_context("fork")


def _die_mid_append(url: str) -> None:
    led = Ledger(url)
    led._on_insert = lambda: os._exit(9)
    led.append("clean", details={"half": True})


def _writer(url: str, writer: int) -> None:
    led = Ledger(url, timeout=60)
    for i in range(8):
        led.append("scan", details={"writer": writer, "i": i})
    led.close()


def _fill(led: Ledger, n: int = 5) -> list[LedgerEntry]:
    return [led.append("scan", inputs=[{"path": f"/d/{i}.csv", "root": f"{i:064x}"}],
                       outputs=[{"path": f"/f/{i}.json"}], details={"i": i}) for i in range(n)]


def _sql(led: Ledger, *statements: str) -> None:
    with led.engine.connect() as conn, conn.begin():
        for s in statements:
            conn.exec_driver_sql(s)


def _problems(led: Ledger) -> list[str]:
    return [str(p) for p in led.verify()]


def test_append_chains_entries(ledger_url: str) -> None:
    led = Ledger(ledger_url)
    entries = _fill(led)
    assert [e.seq for e in led.entries()] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in zip(entries, entries[1:], strict=False))
    assert led.entries() == entries
    assert led.verify() == []
    assert entries[0].actor  # defaults to the OS user


def test_edited_entry_is_named(ledger_url: str) -> None:
    led = Ledger(ledger_url)
    _fill(led)
    _sql(led, """UPDATE poisonguard_ledger SET details = '{"i":99}' WHERE seq = 3""")
    assert _problems(led) == ["entry 3: edited: its content does not match its hash"]


def test_edit_with_recomputed_hash_breaks_the_next_link(ledger_url: str) -> None:
    led = Ledger(ledger_url)
    _fill(led)
    e3 = led.entries()[2]
    forged = LedgerEntry(**{**e3.to_dict(), "details": {"i": 99}})
    new_hash = forged.computed_hash()
    _sql(led, f"""UPDATE poisonguard_ledger SET details = '{{"i":99}}', entry_hash = '{new_hash}'
                  WHERE seq = 3""")
    problems = _problems(led)
    assert len(problems) == 1 and problems[0].startswith("entry 4: its previous hash does not "
                                                         "match entry 3: entry 3 was edited")


def test_deleted_entry_is_named(ledger_url: str) -> None:
    led = Ledger(ledger_url)
    _fill(led)
    _sql(led, "DELETE FROM poisonguard_ledger WHERE seq = 3")
    problems = _problems(led)
    assert "entry 3: missing: the entry was deleted" in problems
    assert any(p.startswith("entry 4:") for p in problems)


def test_deleted_last_entry_is_caught_by_the_recorded_head(ledger_url: str) -> None:
    led = Ledger(ledger_url)
    head = _fill(led)[-1].entry_hash
    _sql(led, "DELETE FROM poisonguard_ledger WHERE seq = 5")
    assert led.verify() == []  # a clean tail cut needs an anchor...
    problems = [str(p) for p in led.verify(expected_head=head)]
    assert problems and "not in the ledger" in problems[0]


def test_inserted_entry_is_named(ledger_url: str) -> None:
    led = Ledger(ledger_url)
    entries = _fill(led)
    # make room at seq 3 and insert a forged entry that chains correctly onto entry 2
    _sql(led, "UPDATE poisonguard_ledger SET seq = seq + 100 WHERE seq >= 3",
         "UPDATE poisonguard_ledger SET seq = seq - 99 WHERE seq >= 100")
    draft = LedgerEntry(3, "clean", "mallory", entries[2].created_at, [], [], {},
                        entries[1].entry_hash, "")
    forged = LedgerEntry(**{**draft.content(), "entry_hash": draft.computed_hash()})
    _sql(led, f"""INSERT INTO poisonguard_ledger VALUES (3, 'clean', 'mallory',
                  '{forged.created_at}', '[]', '[]', '{{}}', '{forged.prev_hash}',
                  '{forged.entry_hash}')""")
    problems = _problems(led)
    assert any(p.startswith("entry 4: out of order: it was chained after entry 2, not entry 3")
               for p in problems)


def test_reordered_entries_are_named(ledger_url: str) -> None:
    led = Ledger(ledger_url)
    _fill(led)
    _sql(led, "UPDATE poisonguard_ledger SET seq = 103 WHERE seq = 3",
         "UPDATE poisonguard_ledger SET seq = 3 WHERE seq = 4",
         "UPDATE poisonguard_ledger SET seq = 4 WHERE seq = 103")
    problems = _problems(led)
    assert any(p.startswith("entry 3: out of order") for p in problems)
    assert any(p.startswith("entry 4:") for p in problems)


def test_crash_in_the_middle_of_an_append_leaves_nothing(ledger_url: str) -> None:
    led = Ledger(ledger_url)
    _fill(led, 2)

    def boom() -> None:
        raise RuntimeError("power cut")

    led._on_insert = boom
    with pytest.raises(RuntimeError):
        led.append("clean", details={"half": True})
    led._on_insert = None
    assert len(led.entries()) == 2 and led.verify() == []
    # a process that dies hard after the INSERT, before COMMIT
    child = _FORK.Process(target=_die_mid_append, args=(ledger_url,))
    child.start()
    child.join(60)
    assert child.exitcode == 9
    assert len(led.entries()) == 2 and led.verify() == []
    assert led.append("clean").seq == 3


def test_four_processes_append_at_once(ledger_url: str) -> None:
    Ledger(ledger_url).close()  # create the schema once
    procs = [_FORK.Process(target=_writer, args=(ledger_url, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    led = Ledger(ledger_url)
    entries = led.entries()
    assert [e.seq for e in entries] == list(range(1, 33))
    assert led.verify() == []
    for w in range(4):
        assert sorted(e.details["i"] for e in entries if e.details["writer"] == w) == list(range(8))


@contextlib.contextmanager
def _hold_write_lock(led: Ledger) -> Iterator[None]:
    with led.engine.connect() as conn:
        conn.execution_options(poisonguard_write=True)
        with conn.begin():
            if not led.is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": 0x706F69736F6E})
            yield


def test_locked_ledger_gives_a_clear_error(ledger_url: str) -> None:
    holder = Ledger(ledger_url)
    _fill(holder, 2)
    waiter = Ledger(ledger_url, timeout=0.3)
    with _hold_write_lock(holder), pytest.raises(LedgerLockedError, match="locked by another"):
        waiter.append("scan")
    assert waiter.append("scan").seq == 3  # free again: works, nothing lost
    assert len(holder.entries()) == 3 and holder.verify() == []


def test_record_event_and_default_location(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("POISONGUARD_LEDGER")
    monkeypatch.chdir(tmp_path)
    assert resolve_location(None) == f"sqlite:///{tmp_path}/.poisonguard/ledger.sqlite"
    entry = record_event("clean", inputs=[{"path": "a", "root": "r"}], outputs=[],
                         details={"dropped": 3}, actor="alice")
    assert entry.seq == 1 and entry.actor == "alice"
    assert (tmp_path / ".poisonguard" / "ledger.sqlite").exists()
    monkeypatch.setenv("POISONGUARD_LEDGER", "postgresql://u:secret@h/db")
    assert resolve_location(None) == "postgresql+psycopg://u:secret@h/db"
    led_url = resolve_location(str(tmp_path / "x.sqlite"))
    assert led_url.endswith("x.sqlite") and os.path.isabs(led_url.removeprefix("sqlite:///"))


def test_bad_kind_and_unserialisable_details_are_usage_errors(ledger_url: str) -> None:
    from poisonguard.errors import UsageError

    led = Ledger(ledger_url)
    with pytest.raises(UsageError):
        led.append("DROP TABLE")
    with pytest.raises(UsageError):
        led.append("scan", details={"x": object()})
    assert led.entries() == []
