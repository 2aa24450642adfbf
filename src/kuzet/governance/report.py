"""The public transparency report: aggregates only (no names, no faces), as HTML, JSON or PDF."""

from __future__ import annotations

import html
import io
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO

from kuzet.governance.policy import Policy

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


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """What happened in a period, as the store gives it: the report is built from these alone."""

    runs: list[tuple[str, int, int, int]]
    """(camera, frames, face tracks, unknown tracks) of each analysis run."""
    entries: list[tuple[str, str, str]]
    """(category, legal basis, status) of each watchlist entry filed."""
    alert_statuses: list[str]
    ledger: list[tuple[str, str, str]]
    """(action, justification, details JSON) of each ledger entry."""
    checkpoint: dict[str, str | int] | None
    """The newest signed checkpoint as witnesses hold it, with its `id` and `signed_at`."""


def build_report(
    inputs: ReportInputs,
    policy: Policy,
    *,
    start: date,
    end: date,
    now: datetime,
    public_key_pem: str,
    key_fingerprint: str = "",
) -> TransparencyReport:
    """Aggregate what happened from `start` to `end` (inclusive, UTC days)."""
    rep = TransparencyReport(
        period_from=start.isoformat(), period_to=end.isoformat(), generated_at=now.isoformat(timespec="seconds")
    )
    per_camera: dict[str, dict[str, int]] = {}
    for camera, frames, tracks, unknown in inputs.runs:
        c = per_camera.setdefault(camera, {"runs": 0, "frames": 0, "face_tracks": 0, "unknown_tracks": 0})
        c["runs"] += 1
        c["frames"] += frames
        c["face_tracks"] += tracks
        c["unknown_tracks"] += unknown
    rep.cameras = [{"camera": name, **counts} for name, counts in sorted(per_camera.items())]
    rep.analysis = {
        "runs": len(inputs.runs),
        "frames": sum(r[1] for r in inputs.runs),
        "face_tracks": sum(r[2] for r in inputs.runs),
        "unknown_tracks_not_stored": sum(r[3] for r in inputs.runs),
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
    rep.entries_by_category = dict(Counter(e[0] for e in inputs.entries))
    rep.entries_by_legal_basis = dict(Counter(e[1] for e in inputs.entries))
    rep.entries_by_status = dict(Counter(e[2] for e in inputs.entries))
    status = Counter(inputs.alert_statuses)
    rep.alerts = {
        "created": len(inputs.alert_statuses),
        "confirmed": status.get("confirmed", 0),
        "rejected": status.get("rejected", 0),
        "pending": status.get("pending", 0),
    }
    decided = rep.alerts["confirmed"] + rep.alerts["rejected"]
    rep.false_match_rate = rep.alerts["rejected"] / decided if decided else None
    _ledger_figures(rep, inputs.ledger)
    if inputs.checkpoint is not None:
        rep.checkpoint = dict(inputs.checkpoint)
    rep.public_key_pem = public_key_pem
    rep.key_fingerprint = key_fingerprint
    return rep


def _ledger_figures(rep: TransparencyReport, ledger: list[tuple[str, str, str]]) -> None:
    actions = Counter(action for action, _, _ in ledger)
    rep.refusals_by_reason = dict(
        Counter(_refusal_kind(why) for action, why, _ in ledger if action.endswith("refused"))
    )
    rep.searches = {a: actions[a] for a in SEARCH_ACTIONS if actions[a]}
    rep.exports = {a: actions[a] for a in EXPORT_ACTIONS if actions[a]}
    rep.deletions = {a: actions[a] for a in DELETION_ACTIONS if actions[a]}
    purged: Counter[str] = Counter()
    for action, _, details in ledger:
        if action == "retention.purge":
            for k, v in json.loads(details).items():
                if isinstance(v, int) and k != "bytes_freed":
                    purged[k] += v
    rep.purged = dict(purged)


def _bar_svg(title: str, counts: dict[str, int], none: str = "none") -> str:
    """A small bar chart as inline SVG (matplotlib without pyplot: safe in a server's threads; no external assets)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 0.45 * max(2, len(counts)) + 0.8), dpi=100)
    ax = fig.subplots()
    labels = list(counts) or [f"({none})"]
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
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def _table(
    rows: Mapping[str, int] | Sequence[Mapping[str, object]],
    headers: tuple[str, ...] = ("", "count"),
    *,
    none: str = "none",
) -> str:
    if isinstance(rows, Mapping):
        body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{v}</td></tr>" for k, v in rows.items())
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    else:
        keys = list(rows[0]) if rows else []
        head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r[k]))}</td>" for k in keys) + "</tr>" for r in rows)
    empty = f"<tr><td>{html.escape(none)}</td></tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or empty}</tbody></table>"


def render_html(rep: TransparencyReport) -> str:
    """A self-contained HTML page (inline CSS and SVG charts)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>kuzet transparency report {rep.period_from} to {rep.period_to}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1a202c}}
table{{border-collapse:collapse;margin:.5rem 0 1rem}}
td,th{{border:1px solid #cbd5e0;padding:.25rem .6rem;text-align:left}}
th{{background:#edf2f7}}code{{word-break:break-all;font-size:.85em}}.grid{{display:flex;flex-wrap:wrap;gap:1rem}}
</style></head><body>
{render_body(rep)}</body></html>
"""


def render_body(rep: TransparencyReport, _: Callable[[str], str] = str) -> str:
    """The report's content as HTML (every value escaped), for a page of its own or inside the dashboard.

    `_` translates its text (the web app's catalogues: `kuzet.web.i18n.gettext(lang)`); English without it.
    """
    none = _("none")
    fmr = _("n/a (no decided alerts)") if rep.false_match_rate is None else f"{rep.false_match_rate:.1%}"
    cp = rep.checkpoint
    held = {k: cp[k] for k in ("tree_size", "root_hash", "timestamp", "key_id", "public_key", "signature") if k in cp}
    checkpoint = (
        "<p>"
        + html.escape(
            _("Ledger size %(size)s, Merkle root %(root)s, signed %(when)s by key %(key)s; signature %(signature)s.")
            % {"size": cp["tree_size"], "root": cp["root_hash"], "when": cp["signed_at"], "key": cp["key_id"],
               "signature": cp["signature"]}
        )
        + "</p><p>"
        + html.escape(
            _("Keep a copy of this signed checkpoint: whoever runs kuzet cannot later rewrite or cut back the ledger "
              "before it without `kuzet audit verify --trusted checkpoint.json` saying so.")
        )
        + f"</p><pre>{html.escape(json.dumps(held, sort_keys=True))}</pre>"
        if cp
        else f"<p>{html.escape(_('No checkpoint yet.'))}</p>"
    )  # fmt: skip
    fingerprint = (
        f"<p>{html.escape(_('Signing key fingerprint:'))} <code>{html.escape(rep.key_fingerprint)}</code></p>"
        if rep.key_fingerprint
        else ""
    )
    t = {k: html.escape(v) for k, v in {
        "title": _("Transparency report"),
        "period": _("Period: %(from)s to %(to)s (UTC). Generated %(when)s.")
        % {"from": rep.period_from, "to": rep.period_to, "when": rep.generated_at},
        "aggregates": _("Aggregates only: this report contains no names and no faces."),
        "cameras": _("Cameras and analysis"),
        "tracks": _("%(tracks)s face tracks analysed; %(unknown)s matched nobody and were counted, not stored.")
        % {"tracks": rep.analysis.get("face_tracks", 0), "unknown": rep.analysis.get("unknown_tracks_not_stored", 0)},
        "purposes": _("Purposes (watchlist categories allowed by the policy)"),
        "entries": _("Watchlist entries requested in the period"),
        "refusals": _("Requests and actions refused"),
        "alerts": _("Alerts and human review"),
        "fmr": _("Estimated false-match rate in the field (rejected / decided alerts):"),
        "searches": _("Searches, views and exports"),
        "deletions": _("Deletions and purges"),
        "ledger": _("Audit ledger"),
        "prove": _("Anyone can check a ledger against this root with the public key below and kuzet audit prove."),
    }.items()}  # fmt: skip
    count, action, by_category, by_basis, by_reason = (
        _("count"), _("action"), _("by category"), _("by legal basis"), _("refusals by reason")
    )  # fmt: skip
    status, entries, alerts, purged = _("status"), _("entries"), _("alerts"), _("purged")
    return f"""<h1>{t["title"]}</h1>
<p>{t["period"]} {t["aggregates"]}</p>
<h2>{t["cameras"]}</h2>
{_table(rep.cameras, none=none)}
<p>{t["tracks"]}</p>
<h2>{t["purposes"]}</h2>
{_table(rep.purposes, none=none)}
<h2>{t["entries"]}</h2>
<div class="grid">{_bar_svg(by_category, rep.entries_by_category, none)}
{_bar_svg(by_basis, rep.entries_by_legal_basis, none)}</div>
{_table(rep.entries_by_status, (status, entries), none=none)}
<h2>{t["refusals"]}</h2>
{_bar_svg(by_reason, rep.refusals_by_reason, none)}
<h2>{t["alerts"]}</h2>
{_table(rep.alerts, (alerts, count), none=none)}
<p>{t["fmr"]} <b>{fmr}</b>.</p>
<h2>{t["searches"]}</h2>
{_table({**rep.searches, **rep.exports}, (action, count), none=none)}
<h2>{t["deletions"]}</h2>
{_table(rep.deletions, (action, count), none=none)}
{_table(rep.purged, (purged, count), none=none)}
<h2>{t["ledger"]}</h2>
{checkpoint}
{fingerprint}
<p>{t["prove"]}</p>
<pre>{html.escape(rep.public_key_pem)}</pre>
"""


def render_pdf(rep: TransparencyReport, path: Path | BinaryIO) -> None:
    """The report as a PDF (matplotlib): a summary page and a page of charts, to a file or a binary stream.

    Figures are made without pyplot, so a server may render reports in several threads at once.
    """
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    with PdfPages(path) as pdf:
        fig = Figure(figsize=(8.27, 11.69))
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
        fig = Figure(figsize=(8.27, 11.69))
        axes = fig.subplots(3, 1)
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


def report_bytes(rep: TransparencyReport, fmt: str) -> tuple[bytes, str]:
    """The report as a download: (content, media type) for `fmt` html, json or pdf."""
    if fmt == "pdf":
        buffer = io.BytesIO()
        render_pdf(rep, buffer)
        return buffer.getvalue(), "application/pdf"
    if fmt == "json":
        return (json.dumps(rep.to_json(), indent=2) + "\n").encode(), "application/json"
    return render_html(rep).encode(), "text/html; charset=utf-8"
