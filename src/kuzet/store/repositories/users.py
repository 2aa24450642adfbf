"""Users, their sessions, and the sign-in failure counters."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from kuzet.core.errors import AuthError, KuzetError
from kuzet.core.i18n import Phrase
from kuzet.core.timeutil import aware
from kuzet.core.types import User
from kuzet.governance.users import NAME_PATTERN, check_password, check_roles
from kuzet.store.db import Database
from kuzet.store.models import SessionRow, ThrottleRow, UserRow

SESSION_HOURS = 12
_hasher = PasswordHasher()
# A real hash to verify against when the user does not exist, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("kuzet-no-such-user")


_SESSION_USER = (
    select(SessionRow.revoked, SessionRow.expires_at, UserRow.id, UserRow.name, UserRow.roles, UserRow.active)
    .join(UserRow, UserRow.id == SessionRow.user_id, isouter=True)
    .where(SessionRow.token_sha256 == bindparam("digest"))
)
"""The session and its user in one query: every authenticated request runs it, so it is built once (SQLAlchemy
then reuses its cache key and compiled SQL instead of building both per request)."""


def session_user(db: Database, token: str, *, now: datetime) -> User:
    """The user a valid, unexpired session token belongs to.

    Every authenticated request asks: one query, run on the driver (`Database.fetch`), outside any session.
    """
    digest = hashlib.sha256(token.encode()).hexdigest()
    found = next(iter(db.fetch(_SESSION_USER, {"digest": digest})), None)
    if found is None or found.revoked:
        raise AuthError("the session is not valid", hint="sign in again with `kuzet login NAME --password-stdin`")
    if aware(found.expires_at) <= now:
        raise AuthError("the session has expired", hint="sign in again with `kuzet login NAME --password-stdin`")
    if found.id is None or not found.active:
        raise AuthError("the account is disabled", hint="ask an administrator")
    return User(user_id=found.id, name=found.name, roles=frozenset(r for r in found.roles.split(",") if r))


def _user(row: UserRow) -> User:
    return User(user_id=row.id, name=row.name, roles=frozenset(r for r in row.roles.split(",") if r))


class UserRepository:
    """Users and sessions in one database session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def count(self) -> int:
        """Number of users."""
        return int(self.session.scalar(select(func.count()).select_from(UserRow)) or 0)

    def create(self, name: str, password: str, roles: list[str], *, created_by: int | None, now: datetime) -> User:
        """Add a user; the name must be new."""
        if not NAME_PATTERN.match(name):
            raise KuzetError(
                Phrase("invalid user name {name!r}", name=name), hint="use 2-64 letters, digits, '.', '_' or '-'"
            )
        check_password(password)
        if self.session.scalar(select(UserRow).where(UserRow.name == name)) is not None:
            raise KuzetError(Phrase("user {name!r} already exists", name=name), hint="choose another name")
        row = UserRow(
            name=name,
            password_hash=_hasher.hash(password),
            roles=",".join(check_roles(roles)),
            active=True,
            created_at=now,
            created_by=created_by,
        )
        self.session.add(row)
        self.session.flush()
        return _user(row)

    def by_name(self, name: str) -> User | None:
        """The user called `name` (active or not), if any."""
        row = self.session.scalar(select(UserRow).where(UserRow.name == name))
        return None if row is None else _user(row)

    def list(self) -> list[User]:
        """Every user, by name."""
        return [_user(r) for r in self.session.scalars(select(UserRow).order_by(UserRow.name))]

    def active(self, name: str) -> User:
        """The active user called `name` (a service acting for them checks they still exist)."""
        row = self.session.scalar(select(UserRow).where(UserRow.name == name, UserRow.active.is_(True)))
        if row is None:
            raise AuthError(f"no active user {name!r}", hint="sign in as an active operator or administrator")
        return _user(row)

    def verify_password(self, name: str, password: str) -> User | None:
        """The user if the password is right, else None."""
        row = self.session.scalar(select(UserRow).where(UserRow.name == name, UserRow.active.is_(True)))
        try:
            _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return _user(row) if row else None

    def open_session(self, user: User, *, now: datetime, hours: int = SESSION_HOURS) -> str:
        """A new session token for `user` (only its hash is stored)."""
        token = secrets.token_urlsafe(32)
        self.session.add(
            SessionRow(
                token_sha256=hashlib.sha256(token.encode()).hexdigest(),
                user_id=user.user_id,
                created_at=now,
                expires_at=now + timedelta(hours=hours),
                revoked=False,
            )
        )
        self.session.flush()
        return token

    def revoke(self, token: str) -> bool:
        """End a session; True if there was one."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        row = self.session.scalar(select(SessionRow).where(SessionRow.token_sha256 == digest))
        if row is None or row.revoked:
            return False
        row.revoked = True
        return True


class ThrottleRepository:
    """Failed sign-ins per key (`user:NAME`, `ip:ADDRESS`), shared by every process through the database.

    A sign-in first reserves a failure on each of its keys (in its own short transaction), then checks the password;
    success gives the reservations back. So parallel attempts count before any of them is checked: with a limit of
    five, the sixth concurrent guess is refused without its password ever being tried.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def _row(self, key: str, now: datetime) -> ThrottleRow:
        row = self.session.get(ThrottleRow, key)
        if row is None:
            row = ThrottleRow(key=key, failures=0, window_start=now, locked_until=None)
            self.session.add(row)
        return row

    def reserve(
        self, keys: list[str], *, now: datetime, limit: int, window_s: float, lock_s: float
    ) -> tuple[str, float, bool] | None:
        """Count one failure on every key before the password is checked.

        Returns:
            None when the attempt may go on; else (the locked key, seconds left, whether this attempt locked it).
        """
        rows = [self._row(k, now) for k in keys]
        for row in rows:
            if row.locked_until is not None and aware(row.locked_until) > now:
                return row.key, (aware(row.locked_until) - now).total_seconds(), False
        for row in rows:
            if aware(row.window_start) < now - timedelta(seconds=window_s):
                row.failures, row.window_start = 0, now
            if row.failures >= limit:
                row.locked_until = now + timedelta(seconds=lock_s)
                row.failures, row.window_start = 0, now
                self.session.flush()
                return row.key, lock_s, True
        for row in rows:
            row.failures += 1
        self.session.flush()
        return None

    def release(self, keys: list[str]) -> None:
        """A good sign-in: its keys' failures are forgotten."""
        for key in keys:
            row = self.session.get(ThrottleRow, key)
            if row is not None:
                row.failures = 0
        self.session.flush()
