"""Fixtures for the backups suites: a library-like CLMS database on real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

LIBRARY_SCHEMA = """
CREATE TABLE books (id serial PRIMARY KEY, isbn text UNIQUE NOT NULL,
    title text NOT NULL, author text NOT NULL, published date);
CREATE TABLE students (id serial PRIMARY KEY, name text NOT NULL,
    form text NOT NULL, email text);
CREATE TABLE loans (id serial PRIMARY KEY,
    book_id int NOT NULL REFERENCES books(id),
    student_id int NOT NULL REFERENCES students(id),
    borrowed_at timestamptz NOT NULL, returned_at timestamptz);
CREATE INDEX loans_student ON loans(student_id);
INSERT INTO books (isbn, title, author, published)
    SELECT 'isbn-' || g, 'Title ' || g || ' ñ "quoted"', 'Author ' || (g % 37),
           date '2000-01-01' + g FROM generate_series(1, 300) g;
INSERT INTO students (name, form, email)
    SELECT 'Student ' || g, 'Form ' || (g % 7), CASE WHEN g % 5 = 0 THEN NULL
           ELSE 's' || g || '@school.example' END FROM generate_series(1, 80) g;
INSERT INTO loans (book_id, student_id, borrowed_at, returned_at)
    SELECT 1 + g % 300, 1 + g % 80, timestamptz '2026-01-01' + g * interval '1 hour',
           CASE WHEN g % 3 = 0 THEN NULL ELSE timestamptz '2026-01-02' + g * interval '1 hour' END
    FROM generate_series(1, 1000) g;
"""


def with_db(url: str, dbname: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture
def clms_db(postgres_url: str, settings, tmp_path: Path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh CLMS database with books, students and loans; settings point at it."""
    name = f"clms_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_db(postgres_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LIBRARY_SCHEMA)
    settings.CLMS_DATABASE_URL = url
    settings.BACKUP_DIR = tmp_path / "backups"
    yield url
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


def library_rows(url: str) -> dict[str, list[tuple]]:
    """Every row of the library tables, in id order."""
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier(table))
            ).fetchall()
            for table in ("books", "students", "loans")
        }


def scratch_databases(postgres_url: str) -> list[str]:
    with psycopg.connect(postgres_url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'clms\\_verify\\_%'"
            ).fetchall()
        ]
