"""The SQLite engine: backup, verify, restore with the online backup API."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

from backups import operations
from backups.models import Backup

pytestmark = pytest.mark.django_db


def _rows(path) -> dict[str, list[tuple]]:  # type: ignore[no-untyped-def]
    with closing(sqlite3.connect(path)) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()  # noqa: S608
            for t in ("books", "students", "loans")
        }


@pytest.fixture
def clms_sqlite(settings, tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "clms.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            """
            CREATE TABLE books (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
            CREATE TABLE students (id INTEGER PRIMARY KEY, name TEXT);
            CREATE TABLE loans (id INTEGER PRIMARY KEY, book_id INT REFERENCES books(id),
                                student_id INT REFERENCES students(id), note BLOB);
            """
        )
        conn.executemany(
            "INSERT INTO books VALUES (?, ?)",
            [(i, f"Book {i} ✓") for i in range(1, 201)],
        )
        conn.executemany(
            "INSERT INTO students VALUES (?, ?)",
            [(i, None if i % 4 == 0 else f"S{i}") for i in range(1, 51)],
        )
        conn.executemany(
            "INSERT INTO loans VALUES (?, ?, ?, ?)",
            [(i, 1 + i % 200, 1 + i % 50, bytes([i % 256]) * 3) for i in range(1, 501)],
        )
        conn.commit()
    settings.CLMS_DATABASE_URL = f"sqlite:///{path}"
    settings.BACKUP_DIR = tmp_path / "backups"
    return path


def test_a_sqlite_backup_round_trips_row_for_row(clms_sqlite):
    before = _rows(clms_sqlite)
    backup = operations.create_verified_backup(reason="t", clms_version="2.0.0")
    assert backup.status == Backup.Status.VERIFIED
    assert backup.engine == "sqlite"
    assert backup.manifest["row_counts"] == {
        "main.books": 200,
        "main.loans": 500,
        "main.students": 50,
    }

    with closing(sqlite3.connect(clms_sqlite)) as conn:
        conn.execute("DELETE FROM loans WHERE id > 10")
        conn.execute("UPDATE books SET title = 'x'")
        conn.execute("CREATE TABLE added (id INT)")
        conn.commit()
    operations.restore_backup(backup.pk, reason="test")

    assert _rows(clms_sqlite) == before
    with closing(sqlite3.connect(clms_sqlite)) as conn:
        tables = {
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    assert "added" not in tables
    leftovers = [
        p.name
        for p in (clms_sqlite.parent / "backups").iterdir()
        if p.name.endswith(".partial")
    ]
    assert leftovers == []
