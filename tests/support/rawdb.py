"""The database as an insider with its password reaches it: plain SQL, past kuzet, on whichever engine the test runs.

Attack tests rewrite, delete or read rows behind kuzet's back; `raw_db(data_dir)` gives them a connection to the
SQLite file in the data directory, or to the PostgreSQL database of KUZET_DATABASE_URL when the run uses one
(`pytest --db postgresql`). Placeholders are SQLite's `?` on both. Tests of the store itself get databases of
their own from `new_database` and copies from `copy_database`.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

PG_ADMIN_ENV = "KUZET_TEST_PG_ADMIN"
"""Set by the test run on PostgreSQL: a URL of the server's maintenance database (to create databases)."""


def on_postgres() -> bool:
    """Whether this test run uses PostgreSQL."""
    return bool(os.environ.get(PG_ADMIN_ENV))


def store_url(data_dir: Path) -> str:
    """The URL of the store kuzet uses for `data_dir` in this run."""
    return os.environ.get("KUZET_DATABASE_URL") or f"sqlite:///{data_dir / 'kuzet.db'}"


def _pg_create(template: str | None = None) -> str:
    admin = os.environ[PG_ADMIN_ENV]
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return admin.rsplit("/", 1)[0] + "/" + name


def new_database(folder: Path, name: str = "k.db") -> str:
    """A new, empty store: `folder/name` on SQLite, a new database on PostgreSQL; returns its URL."""
    return _pg_create() if on_postgres() else f"sqlite:///{folder / name}"


def copy_database(url: str, folder: Path) -> str:
    """A copy of the store at `url` (nobody may be connected to it); returns the copy's URL."""
    if url.startswith("postgres"):
        return _pg_create(template=url.rsplit("/", 1)[1])
    target = folder / "k.db"
    src, dst = sqlite3.connect(url.removeprefix("sqlite:///")), sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{target}"


class RawDb:
    """A DB-API connection with sqlite3's `execute(...).fetchone()` style and `?` placeholders on both engines."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.postgres = url.startswith("postgres")
        self._conn: Any
        if self.postgres:
            self._conn = psycopg.connect(url, autocommit=False)
        else:
            path = url.removeprefix("sqlite:///")
            self._conn = (
                sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
                if read_only
                else sqlite3.connect(path, timeout=30)
            )

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        """Run one statement; returns its cursor."""
        if self.postgres:
            sql = sql.replace("?", "%s")
        return self._conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run one statement for each row."""
        if self.postgres:
            with self._conn.cursor() as cur:
                cur.executemany(sql.replace("?", "%s"), rows)
        else:
            self._conn.executemany(sql, rows)

    def commit(self) -> None:
        self._conn.commit()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RawDb:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        self.close()


def raw_db(data_dir: Path, *, read_only: bool = False) -> RawDb:
    """The database of `data_dir` (or of KUZET_DATABASE_URL), past kuzet."""
    return RawDb(store_url(data_dir), read_only=read_only)


def counting_query() -> Any:
    """A read that takes a while for a large `top` (bound at run time): counting to it with a recursive query."""
    from sqlalchemy import bindparam, func, literal_column, select

    one = literal_column("1")
    numbers = select(one.label("n")).cte("numbers", recursive=True)
    numbers = numbers.union_all(select(numbers.c.n + one).where(numbers.c.n < bindparam("top")))
    return select(func.count()).select_from(numbers)
