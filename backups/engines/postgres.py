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
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from backups.engines.base import DumpResult, Engine
from backups.engines.pgcontainer import (
    ContainerWriter,
    container_streams,
    records,
    stream_of,
)
from backups.engines.pgtools import (
    TOOLS,
    feed,
    feed_all,
    feed_demuxed,
    feed_each,
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
# work_mem lets the foreign-key checks hash the referenced keys in memory.
_RESTORE_PGOPTIONS = (
    "-c synchronous_commit=off -c maintenance_work_mem=256MB -c work_mem=64MB"
)


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
        """Stream two ``pg_dump -Fc -Z0`` archives from one exported snapshot
        into ``sink`` as a format-2 container (see ``pgcontainer``).

        The tables' data is split by size between the two pg_dump processes
        so the server reads it with two cores; the row counts are taken on the
        snapshot's own connection meanwhile (same snapshot, same rows).
        """
        with self.connect() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot_row = conn.execute("SELECT pg_export_snapshot()").fetchone()
            assert snapshot_row is not None
            server = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]
            versions = self.tool_versions(server)
            second = _second_group(self._table_sizes(conn))
            base = [
                tool_path("pg_dump"),
                "--format=custom",
                "--compress=0",
                f"--snapshot={snapshot_row[0]}",
                "--no-password",
            ]
            commands = [base + [f"--exclude-table-data={t}" for t in second]]
            if second:
                commands.append(
                    [*base, "--section=data", *(f"--table={t}" for t in second)]
                )
            counted: dict[str, Any] = {}

            def count_rows() -> None:
                try:
                    counted["rows"] = self.row_counts(conn)
                except Exception as e:  # re-raised in the caller's thread below
                    counted["error"] = e

            writer = ContainerWriter(sink, on_bytes, len(commands))
            with contextlib.ExitStack() as stack:
                processes = []
                for command in commands:
                    stderr = stack.enter_context(tempfile.TemporaryFile())
                    process = subprocess.Popen(
                        command,
                        stdout=subprocess.PIPE,
                        stderr=stderr,
                        env=self._env(self.params),
                    )
                    widen_pipe(process.stdout)
                    processes.append((process, stderr))
                counter = threading.Thread(target=count_rows, name="backup-counts")
                counter.start()
                errors: list[BaseException] = []
                pumps = [
                    threading.Thread(
                        target=_pump, args=(process, number, writer, errors)
                    )
                    for number, (process, _) in enumerate(processes)
                ]
                for pump in pumps:
                    pump.start()
                for pump in pumps:
                    pump.join()
                codes = [process.wait() for process, _ in processes]
                counter.join()
                if errors:
                    raise errors[0]
                for code, (_, stderr) in zip(codes, processes, strict=True):
                    if code != 0:
                        raise BackupError(
                            f"pg_dump failed (exit {code}): {stderr_tail(stderr)}. "
                            "Nothing was kept; fix the cause above and run the "
                            "backup again."
                        )
            if "error" in counted:
                raise counted["error"]
            conn.rollback()
        return DumpResult(counted["rows"], server, versions, format=2)

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
        """Tables with a TABLE DATA entry in ``pg_restore --list`` of the dump
        (of each of its archives, for a format-2 container).

        ``chunks`` must give a fresh stream each time it is iterated.
        """
        streams = container_streams(chunks)
        lines = []
        if not streams:
            lines = self.listing(chunks)
        for stream in range(streams):
            lines += self.listing(stream_of(chunks, stream))
        tables = set()
        for line in lines:
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

        1. The schema (pre-data) from the archive's table of contents; its
           tables are then made UNLOGGED (the scratch database is thrown
           away, so writing WAL for its data and indexes is wasted work).
        2. Table data split by size into two pg_restore processes that load
           at once, each reading its own stream of the file (one stream
           shared between them would make one wait for the other's tables).
        3. Indexes and primary/unique keys split across two pg_restore
           processes that run at once (they need only the archive's table of
           contents, not its data), like ``pg_restore -j 2`` would if the
           stream were a seekable file.
        4. Foreign keys and anything else in post-data last.

        Dumps smaller than ``SINGLE_PASS_BELOW_BYTES`` restore in one pass.
        """
        scratch = f"clms_verify_{uuid.uuid4().hex[:12]}"
        params = {**self._scratch_params(), "dbname": scratch}
        streams = container_streams(open_chunks())
        if streams:
            listing = self.listing(stream_of(open_chunks(), 0))
        else:
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
                    if streams:
                        # Format 2: schema from archive 0, then each archive's
                        # data at once, each process reading its own stream.
                        self._restore_pass(
                            env,
                            scratch,
                            stream_of(open_chunks(), 0),
                            ["--section=pre-data"],
                        )
                        _make_unlogged(params)
                        self._restore_pass(
                            env,
                            scratch,
                            records(open_chunks()),
                            *(["--section=data"] for _ in range(streams)),
                            demux=True,
                        )
                    elif size_hint and size_hint < SINGLE_PASS_BELOW_BYTES:
                        # Small dumps: extra passes cost more than they save.
                        self._restore_pass(env, scratch, open_chunks(), [])
                        parallel, rest = [], []
                    else:
                        self._restore_pass(
                            env, scratch, open_chunks(), ["--section=pre-data"]
                        )
                        _make_unlogged(params)
                        self._restore_lists(
                            env,
                            scratch,
                            lambda _: open_chunks(),
                            self._data_groups(listing),
                            Path(lists),
                            extra=["--section=data"],
                        )
                    archive = (
                        (lambda: stream_of(open_chunks(), 0))
                        if streams
                        else open_chunks
                    )
                    groups = [parallel[0::2], parallel[1::2]]
                    self._restore_lists(env, scratch, archive(), groups, Path(lists))
                    # The data is all in: count rows while the foreign keys
                    # are checked (one pg_restore, so a core is free).
                    counted: dict[str, Any] = {}
                    counter = threading.Thread(
                        target=self._count_into, args=(params, counted)
                    )
                    counter.start()
                    try:
                        self._restore_lists(
                            env,
                            scratch,
                            archive(),
                            [rest],
                            Path(lists),
                            extra=["--section=post-data"],
                        )
                    finally:
                        counter.join()
                if "error" in counted:
                    raise counted["error"]
                return dict(counted["rows"])
            finally:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(scratch)
                    )
                )

    def _count_into(self, params: dict[str, Any], counted: dict[str, Any]) -> None:
        """Row counts of the database ``params`` name, into ``counted["rows"]``
        (or the error into ``counted["error"]``); runs in its own thread."""
        try:
            with psycopg.connect(
                make_conninfo(**{k: str(v) for k, v in params.items()})
            ) as conn:
                counted["rows"] = self.row_counts(conn)
        except Exception as e:  # re-raised by the caller's thread
            counted["error"] = e

    def _table_sizes(
        self, conn: psycopg.Connection | None = None
    ) -> dict[tuple[str, str], int]:
        """Bytes per table in the source database (to balance the data load)."""
        if conn is not None:
            return _sizes(conn)
        try:
            with self.connect() as conn:
                return _sizes(conn)
        except (BackupError, psycopg.Error):
            return {}  # sizes only balance the work; any split is correct

    def _data_groups(self, listing: list[str]) -> list[list[str]]:
        """Two TOC lists for ``--section=data`` with about equal table bytes.

        The first list also holds every non-table-data entry (sequence values,
        large objects); the section filter keeps only data entries of each.
        """
        sizes = self._table_sizes()
        data = []
        for line in listing:
            match = re.match(r"^\d+; \d+ \d+ TABLE DATA (\S+) (\S+) ", line)
            if match:
                data.append((sizes.get((match.group(1), match.group(2)), 0), line))
        loads = [0, 0]
        second = set()
        for size, line in sorted(data, key=lambda item: -item[0]):
            lighter = 0 if loads[0] <= loads[1] else 1
            loads[lighter] += max(size, 1)
            if lighter:
                second.add(line)
        first = [line for line in listing if line not in second]
        return [first, [line for line in listing if line in second]]

    def _restore_lists(
        self,
        env: dict[str, str],
        dbname: str,
        chunks: Iterable[bytes] | Callable[[int], Iterable[bytes]],
        groups: list[list[str]],
        directory: Path,
        extra: tuple[str, ...] | list[str] = (),
    ) -> None:
        """Run one pg_restore per non-empty group of TOC lines, all at once.

        ``chunks`` is one stream fed to all of them, or a function giving
        process *n* its own stream (when they read different parts).
        """
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
        chunks: Iterable[Any] | Callable[[int], Iterable[bytes]],
        *argument_sets: list[str],
        demux: bool = False,
    ) -> None:
        """Run pg_restore processes (one per argument set) fed the same stream,
        or each its own when ``chunks`` is a function opening process *n*'s."""
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
            if demux:
                # ``chunks`` are a container's records: process n gets stream n.
                assert not callable(chunks)
                feed_demuxed([p for p, _ in processes], chunks)
            elif callable(chunks):
                feed_each([(p, chunks(n)) for n, (p, _) in enumerate(processes)])
            else:
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
        streams = container_streams(chunks)
        parts: list[tuple[Iterable[bytes], list[str]]] = [(chunks, [])]
        if streams:
            parts = [
                (stream_of(chunks, 0), ["--section=pre-data"]),
                *((stream_of(chunks, n), ["--section=data"]) for n in range(streams)),
                (stream_of(chunks, 0), ["--section=post-data"]),
            ]
        with tempfile.TemporaryFile() as psql_err:
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
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=psql_err,
                env=env,
            )
            assert consumer.stdin is not None
            widen_pipe(consumer.stdin)
            problem = ""
            try:
                for part, arguments in parts:
                    problem = self._replay(part, arguments, consumer.stdin, env)
                    if problem:
                        break
            except BaseException:
                consumer.kill()  # never let psql commit a partial replay
                consumer.wait()
                raise
            if problem:
                consumer.kill()
            with contextlib.suppress(BrokenPipeError):
                consumer.stdin.close()
            consumer_code = consumer.wait()
            if problem or consumer_code != 0:
                raise BackupError(
                    "The restore failed and was rolled back, so the CLMS database is "
                    f"unchanged: {stderr_tail(psql_err) or problem}"
                )
        with self.connect() as conn:
            return self.row_counts(conn)

    def _replay(
        self,
        chunks: Iterable[bytes],
        arguments: list[str],
        out: Any,
        env: dict[str, str],
    ) -> str:
        """Turn one archive (or a section of it) into SQL written to ``out``.

        Returns pg_restore's error ("" if it succeeded, or psql stopped
        reading, which psql's own exit code reports).
        """
        with tempfile.TemporaryFile() as err:
            producer = subprocess.Popen(
                [
                    tool_path("pg_restore"),
                    "--no-owner",
                    "--no-privileges",
                    "--file=-",
                    *arguments,
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
            )
            assert producer.stdout is not None
            widen_pipe(producer.stdout)
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    feed(producer, chunks)
                except BaseException as e:  # raised in the caller's thread below
                    errors.append(e)

            feeder = threading.Thread(target=run, name="restore-feed")
            feeder.start()
            buffer = bytearray(1 << 20)
            view = memoryview(buffer)
            try:
                while n := producer.stdout.readinto(buffer):  # type: ignore[attr-defined]
                    out.write(view[:n])
            except BrokenPipeError:
                pass  # psql stopped; its exit code and stderr say why
            finally:
                producer.stdout.close()
                feeder.join()
                code = producer.wait()
            if errors:
                raise errors[0]
            return stderr_tail(err) if code != 0 else ""


def _make_unlogged(params: dict[str, Any]) -> None:
    """Make every ordinary table of the (still empty) scratch database UNLOGGED.

    Run after pre-data, before any data or foreign keys: loading data and
    building indexes then write no WAL. What verify proves is unchanged: the
    same schema, data, indexes and constraints must restore.
    """
    with psycopg.connect(
        make_conninfo(**{k: str(v) for k, v in params.items()}), autocommit=True
    ) as conn:
        tables = conn.execute(
            """
            SELECT n.nspname, c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND c.relpersistence = 'p'
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_%'
            """
        ).fetchall()
        for schema, table in tables:
            conn.execute(
                sql.SQL("ALTER TABLE {}.{} SET UNLOGGED").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            )


def _sizes(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    """Bytes of each ordinary user table, keyed ``(schema, table)``."""
    rows = conn.execute(
        """
        SELECT n.nspname, c.relname, pg_relation_size(c.oid) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg\\_%'
        """
    ).fetchall()
    return {(str(schema), str(table)): int(size) for schema, table, size in rows}


def _quoted(name: str) -> str:
    """A name as a pg_dump pattern that matches only itself."""
    return '"' + name.replace('"', '""') + '"'


def _second_group(sizes: dict[tuple[str, str], int]) -> list[str]:
    """pg_dump patterns of the tables whose data the second pg_dump reads.

    Largest first, each table goes to the process with fewer bytes so far;
    the first process also dumps the schema, so it takes the ties.
    """
    loads = [0, 0]
    second = []
    for (schema, table), size in sorted(sizes.items(), key=lambda item: -item[1]):
        lighter = 0 if loads[0] <= loads[1] else 1
        loads[lighter] += max(size, 1)
        if lighter:
            second.append(f"{_quoted(schema)}.{_quoted(table)}")
    return second


def _pump(
    process: subprocess.Popen[bytes],
    stream: int,
    writer: ContainerWriter,
    errors: list[BaseException],
) -> None:
    """Copy one pg_dump's output into the container (runs in its own thread)."""
    assert process.stdout is not None
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    try:
        while n := process.stdout.readinto(buffer):  # type: ignore[attr-defined]
            writer.write(stream, view[:n])
    except BaseException as e:  # handed to the caller's thread
        errors.append(e)
    finally:
        # Closing our end makes a still-running pg_dump stop (SIGPIPE) when we
        # bail out, e.g. on a full disk.
        process.stdout.close()
