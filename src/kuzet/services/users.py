"""Users, sign-in (throttled in the database) and sessions; and the policy in force, recorded when it changes."""

from __future__ import annotations

from kuzet.audit.ledger import Details
from kuzet.core.errors import AuthError, TooManyAttempts
from kuzet.core.i18n import Phrase
from kuzet.core.types import User
from kuzet.services.context import ServiceContext
from kuzet.services.uow import AuditedUnitOfWork
from kuzet.store.repositories.users import session_user


class UserService:
    """Users and their sessions."""

    def __init__(self, ctx: ServiceContext, uow: AuditedUnitOfWork) -> None:
        self.ctx = ctx
        self.uow = uow

    def init_admin(self, name: str, password: str) -> User:
        """Create the first administrator; refused once any user exists."""
        with self.uow.tx() as w:
            if w.users.count():
                raise AuthError(
                    f"{self.ctx.data_dir} is already initialised",
                    hint="sign in with `kuzet login NAME --password-stdin`",
                )
            admin = w.users.create(name, password, ["admin"], created_by=None, now=self.ctx.now())
            w.audit(admin, "user.init", object=f"user:{admin.name}", details={"roles": "admin"})
        return admin

    def any_user(self) -> bool:
        """Whether `init_admin` has run on this store (nobody's data: no audit entry)."""
        with self.uow.read() as r:
            return r.users.count() > 0

    def add(self, actor: User, name: str, password: str, roles: list[str]) -> User:
        """Create a user (admins only)."""
        self.uow.require(actor, "users.add")
        with self.uow.tx() as w:
            user = w.users.create(name, password, roles, created_by=actor.user_id, now=self.ctx.now())
            w.audit(actor, "user.add", object=f"user:{user.name}", details={"roles": ",".join(sorted(user.roles))})
        return user

    def list(self, actor: User) -> list[User]:
        """Every user (admins and auditors)."""
        self.uow.require(actor, "users.list")
        with self.uow.read() as r:
            return r.users.list()

    def login(self, name: str, password: str, *, address: str = "local") -> tuple[User, str]:
        """Check a password and open a session; failures are audited and give no hint which part was wrong.

        A failure is counted on the account and on the client `address` before the password is checked (in the
        database, so parallel attempts and other processes count too); after `sign_in.max_failures` both are
        locked for `sign_in.lock_s` seconds.

        Raises:
            TooManyAttempts: The account or the address is locked.
            AuthError: Wrong name or password.
        """
        cfg = self.ctx.config.sign_in
        who = f"user:{name[:64]}"
        keys = [who, f"ip:{address[:64]}"]
        with self.uow.tx() as w:
            locked = w.throttle.reserve(
                keys, now=self.ctx.now(), limit=cfg.max_failures, window_s=cfg.window_s, lock_s=cfg.lock_s
            )
            if locked is not None and locked[2]:
                details: Details = {"address": address, "locked": locked[0], "seconds": int(cfg.lock_s)}
                w.audit(None, "auth.locked", object=who, details=details, anonymous=True)
        if locked is not None:
            raise TooManyAttempts(
                Phrase("too many failed sign-ins; try again later"), hint=f"wait {int(locked[1]) + 1} seconds"
            )
        with self.uow.read() as r:
            user = r.users.verify_password(name, password)
        if user is None:
            with self.uow.tx() as w:
                w.audit(None, "auth.login_failed", object=who, details={"address": address}, anonymous=True)
            raise AuthError(Phrase("wrong user name or password"), hint="check both and try again")
        with self.uow.tx() as w:
            w.throttle.release(keys)
            token = w.users.open_session(user, now=self.ctx.now())
            w.audit(user, "auth.login", object=f"user:{user.name}", details={"address": address})
        return user, token

    def authenticate(self, token: str) -> User:
        """The user a session token belongs to."""
        return session_user(self.ctx.db, token, now=self.ctx.now())

    def logout(self, token: str) -> None:
        """End a session."""
        user = self.authenticate(token)
        with self.uow.tx() as w:
            w.users.revoke(token)
            w.audit(user, "auth.logout", object=f"user:{user.name}")

    def record_policy(self) -> None:
        """Ledger the policy in force whenever it differs from the last one recorded."""
        record_policy(self.ctx, self.uow)


def record_policy(ctx: ServiceContext, uow: AuditedUnitOfWork) -> None:
    """Ledger the policy in force whenever it differs from the last one recorded.

    Every process that matches or decides does this at start: nothing runs under a policy the ledger does not hold.
    """
    with uow.read() as r:
        last = r.ledger.last("policy.loaded")
    if last is not None and last.details.get("digest") == ctx.policy.digest:
        return
    uow.record(None, "policy.loaded", object=ctx.policy.source, details=ctx.policy.summary())
