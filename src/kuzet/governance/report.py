"""The public transparency report: aggregates only (no names, no faces), as HTML, JSON or PDF."""

from __future__ import annotations

import html
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.audit.ledger import AuditLedger, Checkpoint
from kuzet.governance.policy import Policy
from kuzet.store.models import AlertRow, AnalysisRunRow, AuditEntryRow, WatchlistEntryRow

SEARCH_ACTIONS = ("subject.search", "events.view", "people.view", "watchlist.view", "review.view", "audit.view")
EXPORT_ACTIONS = ("media.export", "report.export")
DELETION_ACTIONS = ("retention.purge", "subject.erase", "watchlist.expired", "watchlist.reject")


@dataclass(slots=True)
class TransparencyReport:
    """Everything the report shows; counts and categories only."""

    period_from: str
    period_to: str
    generated_at: str
    cameras: list[dict[str, str | int]] = field(default_factory=list)
    purposes: list[dict[str, str | int | float]] = field(default_factory=list)
    entries_by_category: dict[str, int] = field(default_factory=dict)
    entries_by_legal_basis: dict[str, int] = field(default_factory=dict)
    entries_by_status: dict[str, int] = field(default_factory=dict)
    refusals_by_reason: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    false_match_rate: float | None = None
    searches: dict[str, int] = field(default_factory=dict)
    exports: dict[str, int] = field(default_factory=dict)
    deletions: dict[str, int] = field(default_factory=dict)
    purged: dict[str, int] = field(default_factory=dict)
    analysis: dict[str, int] = field(default_factory=dict)
    checkpoint: dict[str, str | int] = field(default_factory=dict)
    public_key_pem: str = ""
    key_fingerprint: str = ""
    """SHA-256 of the raw Ed25519 public key that signs the ledger's checkpoints."""

    def to_json(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        return asdict(self)


def _refusal_kind(reason: str) -> str:
    """A refusal's reason reduced to its kind, so that no free text (and no name) reaches the report."""
    r = reason.lower()
    for needle, kind in (
        ("prohibited label", "prohibited label"),
        ("is prohibited", "prohibited category"),
        ("not allowed", "category not in policy"),
        ("legal basis", "missing or unaccepted legal basis"),
        ("maximum", "expiry beyond maximum"),
        ("in the future", "expiry not in the future"),
        ("cannot also approve", "approver is requester"),
        ("consent record", "missing consent record"),
        ("already reviewed", "same reviewer twice"),
    ):
        if needle in r:
            return kind
    return "other"


def build_report(
    session: Session, policy: Policy, *, start: date, end: date, public_key_pem: str, key_fingerprint: str = ""
) -> TransparencyReport:
    """Aggregate what happened from `start` to `end` (inclusive, UTC days)."""
    t0 = datetime.combine(start, time(0), tzinfo=UTC)
    t1 = datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
    rep = TransparencyReport(
        period_from=start.isoformat(),
        period_to=end.isoformat(),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    runs = list(
        session.scalars(select(AnalysisRunRow).where(AnalysisRunRow.started_at >= t0, AnalysisRunRow.started_at < t1))
    )
    per_camera: dict[str, dict[str, int]] = {}
    for r in runs:
        c = per_camera.setdefault(r.camera, {"runs": 0, "frames": 0, "face_tracks": 0, "unknown_tracks": 0})
        c["runs"] += 1
        c["frames"] += r.frames
        c["face_tracks"] += r.tracks
        c["unknown_tracks"] += r.unknown_tracks
    rep.cameras = [{"camera": name, **counts} for name, counts in sorted(per_camera.items())]
    rep.analysis = {
        "runs": len(runs),
        "frames": sum(r.frames for r in runs),
        "face_tracks": sum(r.tracks for r in runs),
        "unknown_tracks_not_stored": sum(r.unknown_tracks for r in runs),
    }
    rep.purposes = [
        {
            "category": n,
            "kind": c.kind,
            "max_days": c.max_days,
            "required_reviews": c.required_reviews,
            "threshold": c.threshold,
        }
        for n, c in sorted(policy.model.categories.items())
    ]
    entries = list(
        session.scalars(
            select(WatchlistEntryRow).where(WatchlistEntryRow.created_at >= t0, WatchlistEntryRow.created_at < t1)
        )
    )
    rep.entries_by_category = dict(Counter(e.category for e in entries))
    rep.entries_by_legal_basis = dict(Counter(e.legal_basis for e in entries))
    rep.entries_by_status = dict(Counter(e.status for e in entries))
    alerts = list(session.scalars(select(AlertRow).where(AlertRow.created_at >= t0, AlertRow.created_at < t1)))
    status = Counter(a.status for a in alerts)
    rep.alerts = {
        "created": len(alerts),
        "confirmed": status.get("confirmed", 0),
        "rejected": status.get("rejected", 0),
        "pending": status.get("pending", 0),
    }
    decided = rep.alerts["confirmed"] + rep.alerts["rejected"]
    rep.false_match_rate = rep.alerts["rejected"] / decided if decided else None
    ledger_rows = list(
        session.scalars(
            select(AuditEntryRow).where(AuditEntryRow.ts >= t0.isoformat(), AuditEntryRow.ts < t1.isoformat())
        )
    )
    actions = Counter(r.action for r in ledger_rows)
    refusals = [r for r in ledger_rows if r.action.endswith("refused")]
    rep.refusals_by_reason = dict(Counter(_refusal_kind(r.justification) for r in refusals))
    rep.searches = {a: actions[a] for a in SEARCH_ACTIONS if actions[a]}
    rep.exports = {a: actions[a] for a in EXPORT_ACTIONS if actions[a]}
    rep.deletions = {a: actions[a] for a in DELETION_ACTIONS if actions[a]}
    purged: Counter[str] = Counter()
    for entry in ledger_rows:
        if entry.action == "retention.purge":
            for k, v in json.loads(entry.details).items():
                if isinstance(v, int) and k != "bytes_freed":
                    purged[k] += v
    rep.purged = dict(purged)
    cp: Checkpoint | None = AuditLedger(session).latest_checkpoint()
    if cp is not None:
        rep.checkpoint = {"id": cp.checkpoint_id, "signed_at": cp.ts, **cp.signed_json()}
    rep.public_key_pem = public_key_pem
    rep.key_fingerprint = key_fingerprint
    return rep


def _bar_svg(title: str, counts: dict[str, int]) -> str:
    """A small bar chart as inline SVG (matplotlib, no external assets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.45 * max(2, len(counts)) + 0.8), dpi=100)
    labels = list(counts) or ["(none)"]
    values = [counts[k] for k in counts] or [0]
    ax.barh(labels, values, color="#2b6cb0")
    ax.set_title(title, fontsize=11)
    ax.invert_yaxis()
    for i, v in enumerate(values):
        ax.text(v, i, f" {v}", va="center", fontsize=9)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def _table(rows: Mapping[str, int] | Sequence[Mapping[str, object]], headers: tuple[str, ...] = ("", "count")) -> str:
    if isinstance(rows, Mapping):
        body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{v}</td></tr>" for k, v in rows.items())
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    else:
        keys = list(rows[0]) if rows else []
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[k]))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>none</td></tr>'}</tbody></table>"


def render_html(rep: TransparencyReport) -> str:
    """A self-contained HTML page (inline CSS and SVG charts)."""
    fmr = "n/a (no decided alerts)" if rep.false_match_rate is None else f"{rep.false_match_rate:.1%}"
    cp = rep.checkpoint
    held = {k: cp[k] for k in ("tree_size", "root_hash", "timestamp", "key_id", "public_key", "signature") if k in cp}
    checkpoint = (
        f"<p>Ledger size {cp['tree_size']}, Merkle root <code>{cp['root_hash']}</code>, signed {cp['signed_at']} "
        f"by key <code>{cp['key_id']}</code>; signature <code>{cp['signature']}</code>.</p>"
        f"<p>Keep a copy of this signed checkpoint: whoever runs kuzet cannot later rewrite or cut back the ledger "
        f"before it without <code>kuzet audit verify --trusted checkpoint.json</code> saying so.</p>"
        f"<pre>{html.escape(json.dumps(held, sort_keys=True))}</pre>"
        if cp
        else "<p>No checkpoint yet.</p>"
    )
    fingerprint = (
        f"<p>Signing key fingerprint: <code>{html.escape(rep.key_fingerprint)}</code></p>"
        if rep.key_fingerprint
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>kuzet transparency report {rep.period_from} to {rep.period_to}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1a202c}}
table{{border-collapse:collapse;margin:.5rem 0 1rem}}
td,th{{border:1px solid #cbd5e0;padding:.25rem .6rem;text-align:left}}
th{{background:#edf2f7}}code{{word-break:break-all;font-size:.85em}}.grid{{display:flex;flex-wrap:wrap;gap:1rem}}
</style></head><body>
<h1>Transparency report</h1>
<p>Period: <b>{rep.period_from}</b> to <b>{rep.period_to}</b> (UTC). Generated {rep.generated_at}.
Aggregates only: this report contains no names and no faces.</p>
<h2>Cameras and analysis</h2>
{_table(rep.cameras)}
<p>{rep.analysis.get("face_tracks", 0)} face tracks analysed; {rep.analysis.get("unknown_tracks_not_stored", 0)}
matched nobody and were counted, not stored.</p>
<h2>Purposes (watchlist categories allowed by the policy)</h2>
{_table(rep.purposes)}
<h2>Watchlist entries requested in the period</h2>
<div class="grid">{_bar_svg("by category", rep.entries_by_category)}
{_bar_svg("by legal basis", rep.entries_by_legal_basis)}</div>
{_table(rep.entries_by_status, ("status", "entries"))}
<h2>Requests and actions refused</h2>
{_bar_svg("refusals by reason", rep.refusals_by_reason)}
<h2>Alerts and human review</h2>
{_table(rep.alerts, ("alerts", "count"))}
<p>Estimated false-match rate in the field (rejected / decided alerts): <b>{fmr}</b>.</p>
<h2>Searches, views and exports</h2>
{_table({**rep.searches, **rep.exports}, ("action", "count"))}
<h2>Deletions and purges</h2>
{_table(rep.deletions, ("action", "count"))}
{_table(rep.purged, ("purged", "count"))}
<h2>Audit ledger</h2>
{checkpoint}
{fingerprint}
<p>Anyone can check a ledger against this root with the public key below and <code>kuzet audit prove</code>.</p>
<pre>{html.escape(rep.public_key_pem)}</pre>
</body></html>
"""


def render_pdf(rep: TransparencyReport, path: Path) -> None:
    """The report as a PDF (matplotlib): a summary page and a page of charts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with PdfPages(path) as pdf:
        fig = plt.figure(figsize=(8.27, 11.69))
        fig.text(0.08, 0.95, "kuzet transparency report", fontsize=18, weight="bold")
        lines = [
            f"Period {rep.period_from} to {rep.period_to} (UTC); generated {rep.generated_at}",
            "Aggregates only: no names, no faces.",
            "",
            f"Cameras: {', '.join(str(c['camera']) for c in rep.cameras) or 'none'}",
            f"Analysis runs {rep.analysis.get('runs', 0)}, face tracks {rep.analysis.get('face_tracks', 0)}, "
            f"unknown (not stored) {rep.analysis.get('unknown_tracks_not_stored', 0)}",
            "Purposes: " + ", ".join(f"{p['category']} (max {p['max_days']} d)" for p in rep.purposes),
            f"Watchlist entries by category: {json.dumps(rep.entries_by_category)}",
            f"Watchlist entries by legal basis: {json.dumps(rep.entries_by_legal_basis)}",
            f"Refusals by reason: {json.dumps(rep.refusals_by_reason)}",
            f"Alerts: {json.dumps(rep.alerts)}",
            "Estimated false-match rate: " + ("n/a" if rep.false_match_rate is None else f"{rep.false_match_rate:.1%}"),
            f"Searches and views: {json.dumps(rep.searches)}",
            f"Exports: {json.dumps(rep.exports)}",
            f"Deletions: {json.dumps(rep.deletions)}; purged: {json.dumps(rep.purged)}",
            "",
            "Latest signed ledger checkpoint:",
            f"  size {rep.checkpoint.get('tree_size', '-')}, key {rep.checkpoint.get('key_id', '-')}",
            f"  root {rep.checkpoint.get('root_hash', '-')}",
            f"  signing key fingerprint {rep.key_fingerprint or '-'}",
        ]
        for i, line in enumerate(lines):
            fig.text(0.08, 0.9 - i * 0.03, line, fontsize=9, family="monospace", wrap=True)
        pdf.savefig(fig)
        plt.close(fig)
        fig, axes = plt.subplots(3, 1, figsize=(8.27, 11.69))
        for ax, (title, counts) in zip(
            axes,
            [
                ("Watchlist entries by category", rep.entries_by_category),
                ("Refusals by reason", rep.refusals_by_reason),
                ("Alerts", {k: v for k, v in rep.alerts.items() if k != "created"}),
            ],
            strict=True,
        ):
            labels = list(counts) or ["(none)"]
            ax.barh(labels, [counts[k] for k in counts] or [0], color="#2b6cb0")
            ax.set_title(title)
            ax.invert_yaxis()
        fig.tight_layout()
        pdf.savefig(fig)
        plt.close(fig)


def write_report(rep: TransparencyReport, out: Path) -> None:
    """Write HTML, JSON or PDF by the file's suffix."""
    suffix = out.suffix.lower()
    if suffix in (".html", ".htm"):
        out.write_text(render_html(rep), encoding="utf-8")
    elif suffix == ".json":
        out.write_text(json.dumps(rep.to_json(), indent=2) + "\n", encoding="utf-8")
    elif suffix == ".pdf":
        render_pdf(rep, out)
    else:
        from kuzet.core.errors import InputError

        raise InputError(f"cannot write a report as {out.name}", hint="use a .html, .json or .pdf file name")
