"""SQLite's writers of one process queue on the write gate; readers and PostgreSQL never wait for it."""

from __future__ import annotations

import threading

import pytest

from gateway.errors import ServiceUnavailableError
from gateway.store import changes
from gateway.store.database import Database, Timeouts


@pytest.fixture
def db(db_url: str):
    database = Database(db_url, timeouts=Timeouts(lock=5.0))
    database.create_schema()
    yield database
    database.dispose()


def hold_a_write(db: Database, written: threading.Event, release: threading.Event) -> threading.Thread:
    def run() -> None:
        with db.session_scope() as conn:
            changes.bump(conn)
            written.set()
            release.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert written.wait(5)
    return thread


def test_a_second_writer_waits_for_the_first_to_commit_then_writes(db):
    written, release, done = threading.Event(), threading.Event(), threading.Event()
    first = hold_a_write(db, written, release)

    def second() -> None:
        with db.session_scope() as conn:
            changes.bump(conn)
        done.set()

    threading.Thread(target=second, daemon=True).start()
    assert not done.wait(0.3), "the second writer did not wait for the first"
    if db.gate is not None:
        assert db.gate.busy()  # SQLite: the first holds the gate, the second queues on it
    release.set()
    first.join(5)
    assert done.wait(5)
    with db.session_scope() as conn:
        assert changes.read_version(conn) == 2
    if db.gate is not None:
        assert not db.gate.busy()  # given back at the end of each session


def test_a_reader_does_not_wait_for_a_writer(db):
    written, release, done = threading.Event(), threading.Event(), threading.Event()
    first = hold_a_write(db, written, release)

    def reader() -> None:
        with db.session_scope() as conn:
            changes.read_version(conn)
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        assert done.wait(2), "a read waited for a write transaction"
    finally:
        release.set()
        first.join(5)


def test_a_writer_that_cannot_get_the_gate_in_time_is_a_503_and_writes_nothing(tmp_path):
    # SQLite only: PostgreSQL has no write gate, its writers lock rows, not the database.
    db = Database(f"sqlite:///{tmp_path / 'gate.db'}", timeouts=Timeouts(lock=0.3))
    db.create_schema()
    assert db.gate is not None
    written, release = threading.Event(), threading.Event()
    first = hold_a_write(db, written, release)
    try:
        errors: list[BaseException] = []

        def second() -> None:
            try:
                with db.session_scope() as conn:
                    changes.bump(conn)
            except BaseException as exc:  # noqa: BLE001 - the test reads it
                errors.append(exc)

        thread = threading.Thread(target=second, daemon=True)
        thread.start()
        thread.join(5)
        assert len(errors) == 1 and isinstance(errors[0], ServiceUnavailableError)
    finally:
        release.set()
        first.join(5)
    with db.session_scope() as conn:
        assert changes.read_version(conn) == 1
    db.dispose()
