"""Lawful watchlists and the people who review their alerts: `kuzet watchlist` and `kuzet review`."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kuzet.cli.common import MAX_ID, console, json_out, session
from kuzet.governance.watchlists import WatchlistRequest
from kuzet.services import views

watchlist_app = typer.Typer(help="Request, approve, reject and show watchlist entries.", no_args_is_help=True)
review_app = typer.Typer(help="Confirm or reject candidate alerts.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@watchlist_app.command("request")
def watchlist_request(
    list_name: Annotated[str, typer.Option("--list", help="Watchlist name.")],
    name: Annotated[str, typer.Option("--name", help="The person's name.")],
    category: Annotated[str, typer.Option("--category", help="Allowed category from the policy file.")],
    legal_basis: Annotated[str, typer.Option("--legal-basis", help="Type of legal basis, e.g. court-order.")],
    reference: Annotated[str, typer.Option("--reference", help="Reference, e.g. the court order number.")],
    authority: Annotated[str, typer.Option("--authority", help="Issuing authority.")],
    expires: Annotated[str, typer.Option("--expires", help="Expiry date YYYY-MM-DD (within the category maximum).")],
    photo: Annotated[
        Path | None, typer.Option("--photo", help="Face categories: a photo showing only this person's face.")
    ] = None,
    plate: Annotated[str | None, typer.Option("--plate", help="Plate categories: the plate, e.g. 123ABC02.")] = None,
    note: Annotated[str, typer.Option("--note", help="Free-text note (screened like labels).")] = "",
) -> None:
    """Request a watchlist entry; it matches nothing until a different user approves it."""
    services, actor = session()
    req = WatchlistRequest.from_text(
        list_name=list_name,
        name=name,
        category=category,
        legal_basis=legal_basis,
        reference=reference,
        authority=authority,
        expires=expires,
        note=note,
    )
    entry_id = services.watchlists.request(actor, req, photo, plate=plate)
    console.print(f"requested watchlist entry {entry_id}; it needs approval by another user", highlight=False)
    sys.stdout.write(f"{entry_id}\n")


@watchlist_app.command("approve")
def watchlist_approve(
    entry_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Entry id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is approved (required, audited).")],
) -> None:
    """Approve a requested entry (approver role; not its requester)."""
    services, actor = session()
    services.watchlists.approve(actor, entry_id, reason=reason)
    console.print(f"approved watchlist entry {entry_id}")


@watchlist_app.command("reject")
def watchlist_reject(
    entry_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Entry id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is rejected (required, audited).")],
) -> None:
    """Reject a requested entry; its template and photo are destroyed."""
    services, actor = session()
    services.watchlists.reject(actor, entry_id, reason=reason)
    console.print(f"rejected watchlist entry {entry_id}")


@watchlist_app.command("withdraw")
def watchlist_withdraw(
    entry_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Entry id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is withdrawn early (required, audited).")],
) -> None:
    """Withdraw a pending or approved entry early (its requester or an approver); its template is destroyed."""
    services, actor = session()
    destroyed = services.watchlists.withdraw(actor, entry_id, reason=reason)
    console.print(f"withdrew watchlist entry {entry_id} ({destroyed} template(s) destroyed)")


@watchlist_app.command("show")
def watchlist_show(
    json_flag: JsonFlag = False,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, approved, rejected, expired or withdrawn.")
    ] = None,
) -> None:
    """Show watchlist entries (audited)."""
    services, actor = session()
    rows = services.watchlists.show(actor, status=status)
    if json_flag:
        json_out([asdict(r) for r in rows])
        return
    table = Table("id", "list", "name", "category", "legal basis", "expires", "status", "requested by", "approved by")
    for r in rows:
        table.add_row(
            str(r.entry_id),
            r.list_name,
            r.subject_name,
            r.category,
            f"{r.legal_basis} {r.reference} ({r.authority})",
            r.expires_at[:10],
            r.status,
            r.requester,
            r.approver,
        )
    console.print(table)


@review_app.command("list")
def review_list(
    json_flag: JsonFlag = False,
    status: Annotated[str, typer.Option("--status", help="pending, confirmed, rejected or all.")] = "pending",
    severity: Annotated[
        str | None, typer.Option("--severity", help="high, medium or low (from the entry's category in the policy).")
    ] = None,
) -> None:
    """Alerts waiting for review: severity, score, threshold (declared false-match rate), best shots, legal basis."""
    services, actor = session()
    rows = services.review.list(actor, status=None if status == "all" else status, severity=severity)
    if json_flag:
        json_out([asdict(r) for r in rows])
        return
    table = Table(
        "alert",
        "status",
        "severity",
        "camera",
        "time s",
        "entry",
        "category / legal basis",
        "score",
        "threshold",
        "declared FMR",
        "reviews",
    )
    for a in rows:
        table.add_row(
            str(a.alert_id),
            a.status,
            a.severity,
            a.camera,
            f"{a.start:.1f}-{a.end:.1f}",
            f"{a.entry_id}: {a.subject_name}",
            f"{a.category}: {a.legal_basis} {a.reference} ({a.authority})",
            f"{a.score:.3f}",
            f"{a.threshold:.3f}",
            "-" if a.false_match_rate is None else f"{a.false_match_rate:g}",
            f"{a.confirmations}/{a.required_reviews}",
        )
    console.print(table)
    for a in rows:
        shots = ", ".join(str(services.ctx.media.path(p)) for p in a.snapshots)
        photo = (
            f"`kuzet media export watchlist {a.entry_id} -o DIR` (encrypted, audited)"
            if a.enrolled_photo
            else "(destroyed)"
        )
        console.print(f"alert {a.alert_id}: best shots {shots}; enrolled photo {photo}", highlight=False)


def _review(alert_id: int, decision: str, reason: str, *, wrong_match: bool = False) -> None:
    services, actor = session()
    status = services.review.decide(actor, alert_id, decision, reason=reason, wrong_match=wrong_match)
    marked = (
        "; its appearance is marked a wrong match of the entry, in force once a second reviewer approves the mark"
        if wrong_match
        else ""
    )
    console.print(f"alert {alert_id}: {decision} recorded; the alert is now {status}{marked}")


@review_app.command("confirm")
def review_confirm(
    alert_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Alert id.")],
    reason: Annotated[str, typer.Option("--reason", help="What you compared (required, audited).")],
) -> None:
    """Confirm that the alert shows the watchlisted person."""
    _review(alert_id, "confirm", reason)


@review_app.command("reject")
def review_reject(
    alert_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="Alert id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is not the person (required, audited).")],
    wrong_match: Annotated[
        bool,
        typer.Option(
            "--wrong-match",
            help="The alert shows the wrong person: once a second reviewer approves the mark, do not alert the same "
            "appearance for this entry again while it lasts (face alerts; each hit so suppressed is ledgered).",
        ),
    ] = False,
) -> None:
    """Reject the alert as a false match."""
    _review(alert_id, "reject", reason, wrong_match=wrong_match)


@review_app.command("marks")
def review_marks(
    json_flag: JsonFlag = False,
    all_marks: Annotated[bool, typer.Option("--all", help="Every mark kept, approved ones too.")] = False,
) -> None:
    """Wrong-match marks waiting for a second reviewer (a mark suppresses hits only once approved)."""
    services, actor = session()
    rows = services.review.marks(actor, pending_only=not all_marks)
    if json_flag:
        json_out([views.mark_for_api(m) for m in rows])
        return
    table = Table("alert", "entry", "status", "marked by", "marked at", "reason", "approved by")
    for m in rows:
        table.add_row(
            str(m.alert_id), str(m.entry_id), m.status, m.marked_by, m.marked_at, m.reason, m.approved_by or "-"
        )
    console.print(table)


def _decide_mark(alert_id: int, decision: str, reason: str) -> None:
    services, actor = session()
    status = services.review.decide_mark(actor, alert_id, decision, reason=reason)
    effect = (
        "it now suppresses the same look on its entry (each hit ledgered)"
        if status == "approved"
        else "the appearance is destroyed; the same look is alerted as before"
    )
    console.print(f"alert {alert_id}: wrong-match mark {status}; {effect}")


@review_app.command("approve-mark")
def review_approve_mark(
    alert_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The marked alert's id (`kuzet review marks`).")],
    reason: Annotated[str, typer.Option("--reason", help="What you compared (required, audited).")],
) -> None:
    """Approve another reviewer's wrong-match mark (compare the alert's best shots with the entry's photo first)."""
    _decide_mark(alert_id, "approve", reason)


@review_app.command("reject-mark")
def review_reject_mark(
    alert_id: Annotated[int, typer.Argument(min=1, max=MAX_ID, help="The marked alert's id (`kuzet review marks`).")],
    reason: Annotated[str, typer.Option("--reason", help="Why the mark does not hold (required, audited).")],
) -> None:
    """Reject a reviewer's wrong-match mark: the appearance is destroyed and the same look is alerted again."""
    _decide_mark(alert_id, "reject", reason)
