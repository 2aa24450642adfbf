"""Who may do what: one table from permission to roles, and the check every service makes through it."""

from __future__ import annotations

from dataclasses import dataclass

from kuzet.core.types import ROLES, User
from kuzet.governance.users import require

EVENT_VIEWERS = ("admin", "operator", "reviewer", "auditor")
AUDIT_READERS = ("auditor", "admin")
HOLDERS = ("admin", "auditor", "approver")


@dataclass(frozen=True, slots=True)
class Permission:
    """The roles that may do something, and how a refusal names it ("may not <action>")."""

    roles: tuple[str, ...]
    action: str


PERMISSIONS: dict[str, Permission] = {
    "users.add": Permission(("admin",), "add users"),
    "users.list": Permission(("admin", "auditor"), "list users"),
    "people.enrol": Permission(("admin", "operator"), "enrol people"),
    "people.approve": Permission(("approver",), "approve enrolments"),
    "people.reject": Permission(("approver",), "reject enrolments"),
    "people.view": Permission(("admin", "operator", "approver", "auditor"), "list enrolled people"),
    "people.photos": Permission(("approver", "auditor", "admin"), "see enrolment photos"),
    "people.reembed": Permission(("admin",), "describe stored photos with a newly configured face model"),
    "watchlist.request": Permission(("requester",), "request watchlist entries"),
    "watchlist.approve": Permission(("approver",), "approve watchlist entries"),
    "watchlist.reject": Permission(("approver",), "reject watchlist entries"),
    "watchlist.withdraw": Permission(("requester", "approver"), "withdraw watchlist entries"),
    "watchlist.view": Permission(("requester", "approver", "reviewer", "auditor", "admin"), "view watchlists"),
    "watchlist.photo": Permission(("reviewer", "approver", "auditor"), "see watchlist photos"),
    "analysis.run": Permission(("admin", "operator"), "run analyses"),
    "live.run": Permission(("admin", "operator"), "run live cameras"),
    "events.view": Permission(EVENT_VIEWERS, "view events"),
    "traffic.passages": Permission(EVENT_VIEWERS, "view traffic passages"),
    "traffic.violations": Permission(EVENT_VIEWERS, "view traffic violations"),
    "alerts.view": Permission(("reviewer", "auditor"), "view alerts"),
    "alerts.review": Permission(("reviewer",), "review alerts"),
    "alerts.marks": Permission(("reviewer", "approver", "auditor"), "list wrong-match marks"),
    "alerts.decide_mark": Permission(("reviewer",), "approve or reject wrong-match marks"),
    "audit.verify": Permission(AUDIT_READERS, "verify the audit ledger"),
    "audit.read": Permission(AUDIT_READERS, "read the audit ledger"),
    "audit.sign": Permission(AUDIT_READERS, "sign ledger checkpoints"),
    "audit.fetch": Permission(("auditor",), "fetch ledger checkpoints"),
    "audit.consistency_sizes": Permission(("auditor",), "prove ledger consistency"),
    "audit.rotations": Permission(AUDIT_READERS, "read ledger key rotations"),
    "audit.rotate_key": Permission(("admin",), "rotate the ledger signing key"),
    "audit.prove": Permission(AUDIT_READERS, "prove ledger entries"),
    "audit.consistency": Permission(AUDIT_READERS, "prove ledger consistency"),
    "audit.checkpoints": Permission(AUDIT_READERS, "list ledger checkpoints"),
    "access.grant": Permission(("admin",), "grant unredacted access"),
    "media.export": Permission(EVENT_VIEWERS, "export media"),
    "media.unredacted": Permission(("reviewer", "auditor"), "see unredacted media without a grant"),
    "recordings.list": Permission(EVENT_VIEWERS, "list recordings"),
    "recordings.export": Permission(EVENT_VIEWERS, "export recordings"),
    "recordings.view": Permission(EVENT_VIEWERS, "play recordings"),
    "holds.add": Permission(HOLDERS, "place legal holds"),
    "holds.release": Permission(HOLDERS, "release legal holds"),
    "holds.list": Permission(HOLDERS, "list legal holds"),
    "retention.run": Permission(("admin", "auditor", "operator"), "run retention"),
    "subject.search": Permission(("admin", "auditor"), "search for a data subject"),
    "subject.erase": Permission(("admin", "auditor"), "erase a data subject"),
    "keys.rotate": Permission(("admin",), "rotate data keys"),
    "report.transparency": Permission(("admin", "auditor"), "produce the transparency report"),
    "cameras.view": Permission(EVENT_VIEWERS, "view cameras"),
    "cameras.status": Permission(EVENT_VIEWERS, "view camera status"),
    "metrics.read": Permission(("admin", "auditor"), "read metrics"),
    "overview.view": Permission(ROLES, "view the overview"),
}
"""Permission -> the roles that hold it. Admin holds no implicit rights: every entry names its roles."""


def check(actor: User, permission: str) -> None:
    """Raise PermissionDenied unless `actor` holds `permission` (an unknown permission is a programming error)."""
    p = PERMISSIONS[permission]
    require(actor, *p.roles, action=p.action)


def holds(actor: User, permission: str) -> bool:
    """Whether `actor` holds `permission` (for showing or hiding what they cannot use)."""
    return actor.has(*PERMISSIONS[permission].roles)
