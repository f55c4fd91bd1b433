"""PostgreSQL: ``pg_dump -Fc -Z0`` out, ``pg_restore`` / ``psql`` back in.

The dump is taken uncompressed (``-Z0``) because pg_dump's zlib runs on one
core and is most of its run time; the caller compresses the stream with
multi-threaded zstd instead. Row counts for the manifest are taken inside the
same exported snapshot that pg_dump uses, so they match the dump exactly even
while CLMS keeps writing.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from backups.engines.base import DumpResult, Engine
from backups.engines.pgtools import (
    TOOLS,
    feed,
    feed_all,
    major_version,
    stderr_tail,
    tool_path,
    tool_version,
    widen_pipe,
)
from backups.errors import BackupError

_LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
}
# Restore speed-ups that are safe for a scratch database and a restore that
# is checked afterwards (a crash mid-restore rolls back or is redone anyway).
# Below this compressed size verify restores in one pass (see scratch_restore_counts).
SINGLE_PASS_BELOW_BYTES = 32 * 1024 * 1024
_RESTORE_PGOPTIONS = "-c synchronous_commit=off -c maintenance_work_mem=256MB"


class PostgresEngine(Engine):
    """A PostgreSQL database backed up with pg_dump's custom format."""

    kind = "postgresql"
    suffix = ".dump.zst"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        # psycopg wants postgresql://; dj-database-url style postgres:// is fine too.
        self.params = conninfo_to_dict(
            re.sub(r"^(postgres|pgsql)://", "postgresql://", url)
        )
        self.dbname = str(self.params.get("dbname") or "")

    # -- connections -------------------------------------------------------

    def _conninfo(self, dbname: str | None = None) -> str:
        params = dict(self.params)
        if dbname:
            params["dbname"] = dbname
        return make_conninfo(**{k: str(v) for k, v in params.items()})

    def _env(self, params: dict[str, Any]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        for key, var in _LIBPQ_ENV.items():
            if params.get(key):
                env[var] = str(params[key])
        return env

    def connect(self, dbname: str | None = None, **kwargs: Any) -> psycopg.Connection:
        try:
            return psycopg.connect(self._conninfo(dbname), **kwargs)
        except psycopg.OperationalError as e:
            raise BackupError(
                f"Could not connect to the PostgreSQL database "
                f"{dbname or self.dbname!r}: {str(e).strip()}. Check "
                "CLMS_DATABASE_URL and that the server is running."
            ) from e

    def _scratch_params(self) -> dict[str, Any]:
        if settings.BACKUP_SCRATCH_DATABASE_URL:
            return conninfo_to_dict(settings.BACKUP_SCRATCH_DATABASE_URL)
        return {**self.params, "dbname": "postgres"}

    # -- facts -------------------------------------------------------------

    def server_version(self) -> str:
        with self.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else ""

    def tool_versions(self, server: str | None = None) -> dict[str, str]:
        versions = {tool: tool_version(tool_path(tool)) for tool in TOOLS}
        server = server or self.server_version()
        dumpmajor_version, servermajor_version = (
            major_version(versions["pg_dump"]),
            major_version(server),
        )
        if dumpmajor_version < servermajor_version:
            raise BackupError(
                f"{versions['pg_dump']} ({tool_path('pg_dump')}) is older than the "
                f"PostgreSQL {server} server; an older pg_dump cannot reliably dump a "
                f"newer server, so no backup was made. Install the PostgreSQL "
                f"{servermajor_version} client tools (for example `apt-get install "
                f"postgresql-client-{servermajor_version}`) or set CLMS_PG_BINDIR to them."
            )
        return versions

    def estimated_size(self) -> int:
        with self.connect() as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        # A custom-format dump without indexes is about 60% of the database.
        return int(int(row[0]) * 0.6) if row else 0

    @staticmethod
    def row_counts(conn: psycopg.Connection) -> dict[str, int]:
        """Exact rows per ordinary table, keyed ``schema.table``."""
        tables = conn.execute(
            """
            SELECT n.nspname, c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r'
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_%'
            ORDER BY 1, 2
            """
        ).fetchall()
        counts = {}
        for schema, table in tables:
            query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            row = conn.execute(query).fetchone()
            counts[f"{schema}.{table}"] = int(row[0]) if row else 0
        return counts

    # -- work --------------------------------------------------------------

    def dump(self, sink: Any, on_bytes: Callable[[int], None]) -> DumpResult:
        """Stream ``pg_dump -Fc -Z0`` into ``sink`` from one exported snapshot."""
        with self.connect() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot_row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert snapshot_row is not None
            server = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]
            versions = self.tool_versions(server)
            counts = self.row_counts(conn)
            command = [
                tool_path("pg_dump"),
                "--format=custom",
                "--compress=0",
                f"--snapshot={snapshot_row[0]}",
                "--no-password",
            ]
            with tempfile.TemporaryFile() as stderr:
                process = subprocess.Popen(
                    command,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=self._env(self.params),
                )
                assert process.stdout is not None
                widen_pipe(process.stdout)
                total = 0
                buffer = bytearray(1 << 20)
                view = memoryview(buffer)
                try:
                    while n := process.stdout.readinto(buffer):  # type: ignore[attr-defined]
                        sink.write(view[:n])
                        total += n
                        on_bytes(total)
                finally:
                    # Closing our end first makes a still-running pg_dump stop
                    # (SIGPIPE) when we bail out, e.g. on a full disk.
                    process.stdout.close()
                    code = process.wait()
                if code != 0:
                    raise BackupError(
                        f"pg_dump failed (exit {code}): {stderr_tail(stderr)}. Nothing was "
                        "kept; fix the cause above and run the backup again."
                    )
            conn.rollback()
        return DumpResult(counts, server, versions)

    def listing(self, chunks: Iterable[bytes]) -> list[str]:
        """The archive's table of contents (``pg_restore --list``), comments dropped."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            process = subprocess.Popen(
                [tool_path("pg_restore"), "--list"],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=err,
            )
            feed(process, chunks)
            if process.wait() != 0:
                raise BackupError(
                    f"pg_restore --list could not read the archive: {stderr_tail(err)}"
                )
            out.seek(0)
            text = out.read().decode(errors="replace")
        return [line for line in text.splitlines() if line and not line.startswith(";")]

    def list_tables(self, chunks: Iterable[bytes]) -> set[str]:
        """Tables with a TABLE DATA entry in ``pg_restore --list`` of the dump."""
        tables = set()
        for line in self.listing(chunks):
            match = re.match(r"^\d+; \d+ \d+ TABLE DATA (\S+) (\S+) ", line)
            if match:
                tables.add(f"{match.group(1)}.{match.group(2)}")
        return tables

    def _admin(self) -> psycopg.Connection:
        params = self._scratch_params()
        try:
            return psycopg.connect(
                make_conninfo(**{k: str(v) for k, v in params.items()}), autocommit=True
            )
        except psycopg.OperationalError as e:
            raise BackupError(
                f"Could not connect to the server for scratch databases: "
                f"{str(e).strip()}. Check BACKUP_SCRATCH_DATABASE_URL or "
                "CLMS_DATABASE_URL."
            ) from e

    def scratch_restore_counts(
        self, open_chunks: Callable[[], Iterable[bytes]], *, size_hint: int = 0
    ) -> dict[str, int]:
        """Restore into ``clms_verify_*``; count rows; always drop it.

        1. Schema and data in one pg_restore pass over the stream.
        2. Indexes and primary/unique keys split across two pg_restore
           processes that run at once (they need only the archive's table of
           contents, not its data), like ``pg_restore -j 2`` would if the
           stream were a seekable file.
        3. Foreign keys and anything else in post-data last.
        """
        scratch = f"clms_verify_{uuid.uuid4().hex[:12]}"
        params = {**self._scratch_params(), "dbname": scratch}
        listing = self.listing(open_chunks())
        parallel = [
            line
            for line in listing
            if re.search(r" \d+ \d+ (INDEX|CONSTRAINT) (?!ATTACH )", line)
        ]
        rest = [line for line in listing if line not in set(parallel)]
        with self._admin() as admin:
            try:
                admin.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch))
                )
            except psycopg.Error as e:
                raise BackupError(
                    f"Could not create the scratch database {scratch} for the "
                    f"restore test: {str(e).strip()}. The database user needs the "
                    "CREATEDB privilege (or set BACKUP_SCRATCH_DATABASE_URL)."
                ) from e
            try:
                env = self._env(params)
                env["PGOPTIONS"] = _RESTORE_PGOPTIONS
                with tempfile.TemporaryDirectory() as lists:
                    if size_hint and size_hint < SINGLE_PASS_BELOW_BYTES:
                        # Small dumps: extra passes cost more than they save.
                        self._restore_pass(env, scratch, open_chunks(), [])
                        parallel, rest = [], []
                    else:
                        self._restore_pass(
                            env,
                            scratch,
                            open_chunks(),
                            ["--section=pre-data", "--section=data"],
                        )
                    groups = [parallel[0::2], parallel[1::2]]
                    self._restore_lists(
                        env, scratch, open_chunks(), groups, Path(lists)
                    )
                    self._restore_lists(
                        env,
                        scratch,
                        open_chunks(),
                        [rest],
                        Path(lists),
                        extra=["--section=post-data"],
                    )
                with psycopg.connect(
                    make_conninfo(**{k: str(v) for k, v in params.items()})
                ) as conn:
                    return self.row_counts(conn)
            finally:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(scratch)
                    )
                )

    def _restore_lists(
        self,
        env: dict[str, str],
        dbname: str,
        chunks: Iterable[bytes],
        groups: list[list[str]],
        directory: Path,
        extra: tuple[str, ...] | list[str] = (),
    ) -> None:
        """Run one pg_restore per non-empty group of TOC lines, all at once."""
        arguments = []
        for group in groups:
            if not group:
                continue
            list_file = directory / f"{uuid.uuid4().hex[:8]}.list"
            list_file.write_text("\n".join(group) + "\n")
            arguments.append([f"--use-list={list_file}", *extra])
        if arguments:
            self._restore_pass(env, dbname, chunks, *arguments)

    def _restore_pass(
        self,
        env: dict[str, str],
        dbname: str,
        chunks: Iterable[bytes],
        *argument_sets: list[str],
    ) -> None:
        """Run pg_restore processes (one per argument set) fed the same stream."""
        with contextlib.ExitStack() as stack:
            processes = []
            for arguments in argument_sets:
                err = stack.enter_context(tempfile.TemporaryFile())
                process = subprocess.Popen(
                    [
                        tool_path("pg_restore"),
                        "--no-owner",
                        "--no-privileges",
                        "--exit-on-error",
                        "--no-password",
                        f"--dbname={dbname}",
                        *arguments,
                    ],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    env=env,
                )
                assert process.stdin is not None
                widen_pipe(process.stdin)
                processes.append((process, err))
            feed_all([p for p, _ in processes], chunks)
            for process, err in processes:
                if process.wait() != 0:
                    raise BackupError(
                        f"The restore test into a scratch database failed: {stderr_tail(err)}"
                    )

    def drop_leftover_scratch_databases(self) -> list[str]:
        """Drop scratch databases a killed verify left behind (call under the lock)."""
        with self._admin() as admin:
            names = [
                r[0]
                for r in admin.execute(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'clms\\_verify\\_%'"
                ).fetchall()
            ]
            for name in names:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(name)
                    )
                )
        return names

    def restore(self, chunks: Iterable[bytes]) -> dict[str, int]:
        """Replace the CLMS database's contents with the dump, in one transaction.

        1. Drop every user schema and recreate ``public`` (tables a later
           migration added must go too).
        2. Replay the dump as SQL (``pg_restore -f -``) through ``psql
           --single-transaction`` so any error rolls everything back.
        3. Count rows in the restored database.
        """
        with self.connect() as conn:
            schemas = [
                r[0]
                for r in conn.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                    "AND nspname <> 'information_schema' ORDER BY 1"
                ).fetchall()
            ]
            drops = "".join(
                sql.SQL("DROP SCHEMA {} CASCADE;")
                .format(sql.Identifier(s))
                .as_string(conn)
                for s in schemas
            )
        prelude = drops + "CREATE SCHEMA public;"
        env = self._env(self.params)
        env["PGOPTIONS"] = _RESTORE_PGOPTIONS
        with (
            tempfile.TemporaryFile() as restore_err,
            tempfile.TemporaryFile() as psql_err,
        ):
            producer = subprocess.Popen(
                [tool_path("pg_restore"), "--no-owner", "--no-privileges", "--file=-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=restore_err,
                env=env,
            )
            consumer = subprocess.Popen(
                [
                    tool_path("psql"),
                    "--no-psqlrc",
                    "--quiet",
                    "--no-password",
                    "--set=ON_ERROR_STOP=1",
                    "--single-transaction",
                    f"--command={prelude}",
                    "--file=-",
                ],
                stdin=producer.stdout,
                stdout=subprocess.DEVNULL,
                stderr=psql_err,
                env=env,
            )
            assert producer.stdout is not None
            producer.stdout.close()  # psql owns the read end now
            feed(producer, chunks)
            producer_code = producer.wait()
            consumer_code = consumer.wait()
            if producer_code != 0 or consumer_code != 0:
                raise BackupError(
                    "The restore failed and was rolled back, so the CLMS database is "
                    f"unchanged: {stderr_tail(psql_err) or stderr_tail(restore_err)}"
                )
        with self.connect() as conn:
            return self.row_counts(conn)
