"""The public transparency report: aggregates only (no names, no faces), as HTML, JSON or PDF, in kk, ru or en."""

from __future__ import annotations

import html
import io
import json
import textwrap
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from kuzet.core.i18n import DEFAULT, Gettext, checked, gettext, marked
from kuzet.governance.policy import Policy

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SEARCH_ACTIONS = ("subject.search", "events.view", "people.view", "watchlist.view", "review.view", "audit.view")
EXPORT_ACTIONS = ("media.export", "report.export")
DELETION_ACTIONS = ("retention.purge", "subject.erase", "watchlist.expired", "watchlist.reject")
LABELS = {
    "camera": marked("camera"),
    "runs": marked("runs"),
    "frames": marked("frames"),
    "face_tracks": marked("face tracks"),
    "unknown_tracks": marked("unknown tracks"),
    "category": marked("category"),
    "kind": marked("kind"),
    "max_days": marked("maximum days"),
    "required_reviews": marked("reviews required"),
    "threshold": marked("threshold"),
    "declared_false_match_rate": marked("declared false-match rate"),
    "created": marked("created"),
    "marked_wrong_match": marked("rejected and marked a wrong match"),
    "suppressed_as_wrong_match": marked("hits not alerted: a marked wrong match"),
    "marks_approved": marked("wrong-match marks approved by a second person"),
    "marks_rejected": marked("wrong-match marks rejected by a second person"),
}
"""The report's keys (table columns, alert counts) as people read them; shown translated."""


@dataclass(slots=True)
class TransparencyReport:
    """Everything the report shows; counts and categories only."""

    period_from: str
    period_to: str
    generated_at: str
    cameras: list[dict[str, str | int]] = field(default_factory=list)
    purposes: list[dict[str, str | int | float | None]] = field(default_factory=list)
    calibration: dict[str, str | int] = field(default_factory=dict)
    """What derived thresholds were measured on: `embedder`, `impostor_pairs`, `data` (empty when none is)."""
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
        ("prohibited label", marked("prohibited label")),
        ("is prohibited", marked("prohibited category")),
        ("not allowed", marked("category not in policy")),
        ("legal basis", marked("missing or unaccepted legal basis")),
        ("maximum", marked("expiry beyond maximum")),
        ("in the future", marked("expiry not in the future")),
        ("cannot also approve", marked("approver is requester")),
        ("consent record", marked("missing consent record")),
        ("already reviewed", marked("same reviewer twice")),
    ):
        if needle in r:
            return kind
    return marked("other")


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
            "declared_false_match_rate": c.false_match_rate,
            "threshold": round(policy.threshold(n), 4),
        }
        for n, c in sorted(policy.model.categories.items())
    ]
    if policy.derived and policy.calibration is not None:
        cal = policy.calibration
        rep.calibration = {"embedder": cal.embedder, "impostor_pairs": cal.impostor_pairs, "data": cal.data()}
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
    marks = sum(
        1 for action, _, details in ledger if action == "review.reject" and json.loads(details).get("wrong_match")
    )
    if marks or actions["alert.suppressed"]:  # what wrong-match marks kept from review, for the oversight body
        rep.alerts |= {
            "marked_wrong_match": marks,
            "marks_approved": actions["review.mark_approved"],
            "marks_rejected": actions["review.mark_rejected"],
            "suppressed_as_wrong_match": actions["alert.suppressed"],
        }


def _bar_svg(title: str, counts: dict[str, int], none: str = "none") -> str:
    """A small bar chart as inline SVG (matplotlib without pyplot: safe in a server's threads; no external assets)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 0.45 * max(2, len(counts)) + 0.8), dpi=100)
    _bars(fig.subplots(), title, counts, none)
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def _bars(ax: Axes, title: str, counts: Mapping[str, int], none: str, rows: int = 0) -> None:
    """Horizontal bars of `counts`, each with its number, top to bottom; room for at least `rows` bars."""
    from matplotlib.ticker import MaxNLocator

    labels = list(counts) or [f"({none})"]
    values = [counts[k] for k in counts] or [0]
    ax.barh(labels, values, color="#2b6cb0")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v}", va="center", fontsize=9)
    ax.set_title(title, fontsize=11)
    ax.set_ylim(max(len(labels), rows) - 0.5, -0.5)  # the first at the top
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.5 of an alert
    ax.spines[["top", "right"]].set_visible(False)


def _labelled(counts: Mapping[str, int], _: Gettext) -> dict[str, int]:
    """Counts keyed by what people read: the report's own words translated, identifiers as they are."""
    return {_(LABELS.get(k, k)): v for k, v in counts.items()}


def _cell(value: object) -> str:
    return "–" if value is None else str(value)


def _table(
    rows: Mapping[str, int] | Sequence[Mapping[str, object]],
    headers: tuple[str, ...] = ("", "count"),
    *,
    none: str = "none",
    _: Gettext = str,
) -> str:
    if isinstance(rows, Mapping):
        body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{v}</td></tr>" for k, v in _labelled(rows, _).items())
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    else:
        keys = list(rows[0]) if rows else []
        head = "".join(f"<th>{html.escape(_(LABELS.get(k, k)))}</th>" for k in keys)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r[k]))}</td>" for k in keys) + "</tr>" for r in rows)
    empty = f"<tr><td>{html.escape(none)}</td></tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or empty}</tbody></table>"


def render_html(rep: TransparencyReport, lang: str = DEFAULT) -> str:
    """A self-contained HTML page (inline CSS and SVG charts) in `lang` (kk, ru or en)."""
    _ = gettext(checked(lang))
    title = html.escape(
        _("kuzet transparency report %(from)s to %(to)s") % {"from": rep.period_from, "to": rep.period_to}
    )
    return f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem;color:#1a202c}}
table{{border-collapse:collapse;margin:.5rem 0 1rem}}
td,th{{border:1px solid #cbd5e0;padding:.25rem .6rem;text-align:left}}
th{{background:#edf2f7}}code{{word-break:break-all;font-size:.85em}}.grid{{display:flex;flex-wrap:wrap;gap:1rem}}
</style></head><body>
{render_body(rep, _)}</body></html>
"""


def render_body(rep: TransparencyReport, _: Gettext = str) -> str:
    """The report's content as HTML (every value escaped), for a page of its own or inside the dashboard.

    `_` translates its text (`kuzet.core.i18n.gettext(lang)`); English without it.
    """
    texts = _texts(rep, _)
    t = {k: html.escape(v) for k, v in texts.items()}
    none = texts["none"]
    cp = rep.checkpoint
    held = {k: cp[k] for k in ("tree_size", "root_hash", "timestamp", "key_id", "public_key", "signature") if k in cp}
    checkpoint = "".join(f"<p>{html.escape(line)}</p>" for line in _checkpoint_text(rep, _))
    if cp:
        checkpoint += f"<pre>{html.escape(json.dumps(held, sort_keys=True))}</pre>"
    fingerprint = (
        f"<p>{t['fingerprint']} <code>{html.escape(rep.key_fingerprint)}</code></p>" if rep.key_fingerprint else ""
    )
    by_category, by_basis, by_reason = texts["by_category"], texts["by_basis"], texts["by_reason"]
    count, action, status, entries, alerts = _("count"), _("action"), texts["status"], _("entries"), _("alerts")
    purged = texts["purged"]
    return f"""<h1>{t["title"]}</h1>
<p>{t["period"]} {t["aggregates"]}</p>
<h2>{t["cameras"]}</h2>
{_table(rep.cameras, none=none, _=_)}
<p>{t["tracks"]}</p>
<h2>{t["purposes"]}</h2>
{_table(rep.purposes, none=none, _=_)}
{f"<p>{t['calibration']}</p>" if t["calibration"] else ""}
<h2>{t["entries"]}</h2>
<div class="grid">{_bar_svg(by_category, rep.entries_by_category, none)}
{_bar_svg(by_basis, rep.entries_by_legal_basis, none)}</div>
{_table(rep.entries_by_status, (status, entries), none=none, _=_)}
<h2>{t["refusals"]}</h2>
{_bar_svg(by_reason, _labelled(rep.refusals_by_reason, _), none)}
<h2>{t["alerts"]}</h2>
{_table(rep.alerts, (alerts, count), none=none, _=_)}
<p>{t["fmr"]} <b>{t["fmr_value"]}</b>.</p>
<h2>{t["searches"]}</h2>
{_table({**rep.searches, **rep.exports}, (action, count), none=none, _=_)}
<h2>{t["deletions"]}</h2>
{_table(rep.deletions, (action, count), none=none, _=_)}
{_table(rep.purged, (purged, count), none=none, _=_)}
<h2>{t["ledger"]}</h2>
{checkpoint}
{fingerprint}
<p>{t["prove"]}</p>
<pre>{html.escape(rep.public_key_pem)}</pre>
"""


def _texts(rep: TransparencyReport, _: Gettext) -> dict[str, str]:
    """The report's headings and sentences (unescaped), shared by the HTML and the PDF."""
    fmr = _("n/a (no decided alerts)") if rep.false_match_rate is None else f"{rep.false_match_rate:.1%}"
    return {
        "title": _("Transparency report"),
        "period": _("Period: %(from)s to %(to)s (UTC). Generated %(when)s.")
        % {"from": rep.period_from, "to": rep.period_to, "when": rep.generated_at},
        "aggregates": _("Aggregates only: this report contains no names and no faces."),
        "cameras": _("Cameras and analysis"),
        "tracks": _("%(tracks)s face tracks analysed; %(unknown)s matched nobody and were counted, not stored.")
        % {"tracks": rep.analysis.get("face_tracks", 0), "unknown": rep.analysis.get("unknown_tracks_not_stored", 0)},
        "purposes": _("Purposes (watchlist categories allowed by the policy)"),
        "calibration": _calibration_text(rep, _),
        "entries": _("Watchlist entries requested in the period"),
        "refusals": _("Requests and actions refused"),
        "alerts": _("Alerts and human review"),
        "fmr": _("Estimated false-match rate in the field (rejected / decided alerts):"),
        "fmr_value": fmr,
        "searches": _("Searches, views and exports"),
        "deletions": _("Deletions and purges"),
        "ledger": _("Audit ledger"),
        "prove": _("Anyone can check a ledger against this root with the public key below and kuzet audit prove."),
        "none": _("none"),
        "by_category": _("by category"),
        "by_basis": _("by legal basis"),
        "by_reason": _("refusals by reason"),
        "status": _("status"),
        "purged": _("purged"),
        "fingerprint": _("Signing key fingerprint:"),
    }  # fmt: skip


def _calibration_text(rep: TransparencyReport, _: Gettext) -> str:
    """How thresholds of purposes with a declared false-match rate were set ("" when none declares one)."""
    cal = rep.calibration
    if not cal:
        return ""
    return _(
        "Where a purpose declares a false-match rate, its threshold is the lowest at which %(pairs)s comparisons of "
        "different people, measured with the %(model)s face model on %(data)s, show that rate or less with 95%% "
        "confidence."
    ) % {"pairs": cal["impostor_pairs"], "model": cal["embedder"], "data": cal["data"]}


def _checkpoint_text(rep: TransparencyReport, _: Gettext) -> list[str]:
    cp = rep.checkpoint
    if not cp:
        return [_("No checkpoint yet.")]
    return [
        _("Ledger size %(size)s, Merkle root %(root)s, signed %(when)s by key %(key)s; signature %(signature)s.")
        % {"size": cp["tree_size"], "root": cp["root_hash"], "when": cp["signed_at"], "key": cp["key_id"],
           "signature": cp["signature"]},
        _("Keep a copy of this signed checkpoint: whoever runs kuzet cannot later rewrite or cut back the ledger "
          "before it without `kuzet audit verify --trusted checkpoint.json` saying so."),
    ]  # fmt: skip


_PDF_LOCK = threading.Lock()
"""One PDF at a time: its settings (text kept as text, a font with Kazakh letters) are matplotlib's global ones."""
FONT = "DejaVu Sans"
"""Matplotlib ships it, and it has every letter of Kazakh and Russian (ә ғ қ ң ө ұ ү һ і)."""
A4 = (8.27, 11.69)


def render_pdf(rep: TransparencyReport, path: Path | BinaryIO, lang: str = DEFAULT) -> None:
    """The report as a PDF (matplotlib) in `lang` (kk, ru or en): the text, then a page of charts.

    Figures are made without pyplot; the PDF font settings are matplotlib's globals, so PDFs render one at a time
    (`_PDF_LOCK`).
    """
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    _ = gettext(checked(lang))
    style = matplotlib.rc_context({"pdf.fonttype": 42, "font.family": FONT})  # TrueType: text is searchable
    with _PDF_LOCK, style, PdfPages(path) as pdf:
        for fig in _text_pages(rep, _):
            pdf.savefig(fig)
        pdf.savefig(_chart_page(rep, _))


def _pdf_lines(rep: TransparencyReport, _: Gettext) -> list[tuple[str, str]]:
    """(style, text) of each paragraph of the PDF's text: "h1", "h2", "p" or "pre"."""
    t = _texts(rep, _)
    none = t["none"]

    def pairs(counts: Mapping[str, int]) -> str:
        return ", ".join(f"{k}: {v}" for k, v in _labelled(counts, _).items()) or none

    def row(r: Mapping[str, object], name: str) -> str:
        cells = [(_(LABELS.get(k, k)), _cell(v)) for k, v in r.items() if k != name]
        return f"{r[name]}: " + ", ".join(f"{label} {v}" for label, v in cells)

    lines = [("h1", f"kuzet · {t['title']}"), ("p", t["period"]), ("p", t["aggregates"]), ("h2", t["cameras"])]
    lines += [("p", row(c, "camera")) for c in rep.cameras] or [("p", none)]
    lines += [("p", t["tracks"]), ("h2", t["purposes"])]
    lines += [("p", row(p, "category")) for p in rep.purposes] or [("p", none)]
    lines += [("p", t["calibration"])] if t["calibration"] else []
    lines += [
        ("h2", t["entries"]),
        ("p", f"{t['by_category']}: {pairs(rep.entries_by_category)}"),
        ("p", f"{t['by_basis']}: {pairs(rep.entries_by_legal_basis)}"),
        ("p", f"{t['status']}: {pairs(rep.entries_by_status)}"),
        ("h2", t["refusals"]),
        ("p", f"{t['by_reason']}: {pairs(rep.refusals_by_reason)}"),
        ("h2", t["alerts"]),
        ("p", pairs(rep.alerts)),
        ("p", f"{t['fmr']} {t['fmr_value']}"),
        ("h2", t["searches"]),
        ("p", pairs({**rep.searches, **rep.exports})),
        ("h2", t["deletions"]),
        ("p", pairs(rep.deletions)),
        ("p", f"{t['purged']}: {pairs(rep.purged)}"),
        ("h2", t["ledger"]),
    ]
    lines += [("p", text) for text in _checkpoint_text(rep, _)]
    if rep.key_fingerprint:
        lines += [("p", t["fingerprint"]), ("pre", rep.key_fingerprint)]
    lines += [("p", t["prove"])] + [("pre", line) for line in rep.public_key_pem.splitlines()]
    return lines


def _text_pages(rep: TransparencyReport, _: Gettext) -> list[Figure]:
    """The PDF's text, wrapped, on as many A4 pages as it takes."""
    from matplotlib.figure import Figure

    style = {  # size, weight, font, line height (of the page), characters a line
        "h1": (16, "bold", FONT, 0.045, 45),
        "h2": (11, "bold", FONT, 0.03, 70),
        "p": (9, "normal", FONT, 0.016, 88),
        "pre": (8, "normal", f"{FONT} Mono", 0.014, 100),
    }
    pages: list[Figure] = []
    fig, y = Figure(figsize=A4), 0.95
    for kind, text in _pdf_lines(rep, _):
        size, weight, font, step, width = style[kind]
        for part in textwrap.wrap(text, width, break_on_hyphens=False) or [""]:
            if y < 0.05:
                pages.append(fig)
                fig, y = Figure(figsize=A4), 0.95
            if kind == "h2":
                y -= 0.01
            fig.text(0.07, y, part, va="top", fontsize=size, weight=weight, family=font)
            y -= step
    pages.append(fig)
    return pages


def _chart_page(rep: TransparencyReport, _: Gettext) -> Figure:
    """A page of bar charts: entries by category and by legal basis, refusals by reason, alerts."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=A4)
    t = _texts(rep, _)
    charts = [
        (f"{t['entries']}: {t['by_category']}", rep.entries_by_category),
        (f"{t['entries']}: {t['by_basis']}", rep.entries_by_legal_basis),
        (t["refusals"], _labelled(rep.refusals_by_reason, _)),
        (t["alerts"], _labelled(rep.alerts, _)),
    ]
    for ax, (title, counts) in zip(fig.subplots(len(charts), 1), charts, strict=True):
        _bars(ax, title, counts, t["none"], rows=5)
    fig.tight_layout()
    return fig


def write_report(rep: TransparencyReport, out: Path, lang: str = DEFAULT) -> None:
    """Write HTML, JSON or PDF by the file's suffix; HTML and PDF in `lang` (kk, ru or en; JSON is data)."""
    checked(lang)
    suffix = out.suffix.lower()
    if suffix in (".html", ".htm"):
        out.write_text(render_html(rep, lang), encoding="utf-8")
    elif suffix == ".json":
        out.write_text(json.dumps(rep.to_json(), indent=2) + "\n", encoding="utf-8")
    elif suffix == ".pdf":
        render_pdf(rep, out, lang)
    else:
        from kuzet.core.errors import InputError

        raise InputError(f"cannot write a report as {out.name}", hint="use a .html, .json or .pdf file name")


def report_bytes(rep: TransparencyReport, fmt: str, lang: str = DEFAULT) -> tuple[bytes, str]:
    """The report as a download: (content, media type) for `fmt` html, json or pdf; HTML and PDF in `lang`."""
    checked(lang)
    if fmt == "pdf":
        buffer = io.BytesIO()
        render_pdf(rep, buffer, lang)
        return buffer.getvalue(), "application/pdf"
    if fmt == "json":
        return (json.dumps(rep.to_json(), indent=2) + "\n").encode(), "application/json"
    return render_html(rep, lang).encode(), "text/html; charset=utf-8"
