"""Users and roles: what a name, a password and a set of roles must be, and the role check."""

from __future__ import annotations

import re

from kuzet.core.errors import KuzetError, PermissionDenied
from kuzet.core.i18n import Phrase
from kuzet.core.types import ROLES, User

MIN_PASSWORD = 10
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")
"""User names: letters, digits, `.`, `_` and `-`, 2 to 64 of them."""


def check_roles(roles: list[str]) -> list[str]:
    """Validated, de-duplicated roles."""
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise KuzetError(
            Phrase("unknown role(s): {roles}", roles=", ".join(bad) or Phrase("(none given)")),
            hint=f"roles are: {', '.join(ROLES)}",
        )
    return sorted(set(roles))


def check_password(password: str) -> None:
    """Refuse passwords too short to be safe."""
    if len(password) < MIN_PASSWORD:
        raise KuzetError(
            Phrase("the password is shorter than {least} characters", least=MIN_PASSWORD), hint="choose a longer one"
        )


def require(user: User, *roles: str, action: str) -> None:
    """Raise PermissionDenied unless `user` holds one of `roles` (admin holds no implicit rights)."""
    if not user.has(*roles):
        raise PermissionDenied(
            Phrase(
                "{user} may not {action}: it needs the role {roles}",
                user=user.name,
                action=Phrase(action),
                roles=" or ".join(roles),
            ),
            hint=Phrase("ask an administrator to grant the role, or sign in as someone who has it"),
        )
