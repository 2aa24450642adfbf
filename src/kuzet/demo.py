"""`kuzet demo`: a self-contained run on images that installed packages ship (no network, no shared data).

scikit-image ships two public-domain portraits, the astronaut Eileen Collins (NASA) and "the cameraman", and
matplotlib ships one of Grace Hopper (US Navy). The demo creates users, enrols the astronaut as a consenting staff
member (an approver approves the enrolment), files and approves a missing-person watchlist entry for Grace Hopper,
writes a short H.264 clip in which all three appear (the cameraman as a stranger), analyses it like any other video,
has two reviewers confirm the watchlist alert, and verifies the audit ledger.
"""

from __future__ import annotations

import dataclasses
import importlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kuzet.config.models import KuzetConfig
from kuzet.core.errors import KuzetError
from kuzet.governance.review import Alert

DEMO_PERSON = "Eileen Collins (astronaut)"


def _step(console: Console, n: int, text: str) -> None:
    """One numbered step of the demo (no markup: paths and names are printed as they are)."""
    console.print(Text.assemble((f"{n}. ", "bold"), text), highlight=False)


def _paste(canvas: NDArray[np.uint8], patch: NDArray[np.uint8], x: int, y: int) -> None:
    h, w = patch.shape[:2]
    canvas[y : y + h, x : x + w] = patch


def build_scene(folder: Path, *, frames: int = 48, fps: int = 12) -> tuple[Path, Path, Path]:
    """Write the two reference photos and the scene clip into `folder`; returns (astronaut, hopper, clip)."""
    import av
    import matplotlib.cbook
    from PIL import Image

    data: Any = importlib.import_module("skimage.data")
    folder.mkdir(parents=True, exist_ok=True)
    astronaut = np.asarray(data.astronaut(), dtype=np.uint8)
    photo = folder / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    hopper_file = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    hopper = np.asarray(Image.open(str(hopper_file)).convert("RGB"), dtype=np.uint8)
    hopper_photo = folder / "grace-hopper.png"
    Image.fromarray(hopper).save(hopper_photo)

    # The scene: mirrored, resized, darker copies of both women and the (grey) cameraman on a coffee-shop photo.
    head = np.asarray(cv2.resize(np.ascontiguousarray(astronaut[20:260, 130:330][:, ::-1]), (150, 180)), np.uint8)
    head = np.clip(head.astype(np.int16) - 20, 0, 255).astype(np.uint8)
    grace = np.asarray(cv2.resize(np.ascontiguousarray(hopper[90:390, 110:420][:, ::-1]), (150, 145)), np.uint8)
    cam = data.camera()[80:300, 150:310]
    stranger = np.asarray(cv2.resize(np.stack([cam] * 3, axis=-1), (128, 176)), np.uint8)
    background = np.asarray(cv2.resize(np.asarray(data.coffee(), np.uint8), (640, 480)), np.uint8)
    clip = folder / "scene.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(frames):
            canvas = background.copy()
            _paste(canvas, stranger, 250, 290)
            _paste(canvas, head, 20 + i * 2, 60 + (i % 6))
            _paste(canvas, grace, 470 - i * 2, 40 + (i % 4))
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return photo, hopper_photo, clip


def _scored(alert: Alert) -> str:
    """An alert's score against its threshold, and the false-match rate its category declares."""
    text = f"score {alert.score:.3f}, threshold {alert.threshold:.3f}"
    if alert.false_match_rate is not None:
        text += (
            f" (derived from the false-match rate {alert.false_match_rate:g} that {alert.category} declares: on the "
            f"measured data, at most 1 in {round(1 / alert.false_match_rate):,} comparisons of different people "
            f"reach it, at 95% confidence)"
        )
    return text


def run_demo(root: Path, *, config: KuzetConfig, console: Console, progress_console: Console) -> None:
    """The whole lawful-watchlist scenario, printed step by step, in the data directory `root`."""
    import secrets

    from kuzet.governance.watchlists import WatchlistRequest
    from kuzet.services.container import build_services

    photo, wanted_photo, clip = build_scene(root / "scene")

    svc = build_services(root, config, origin="demo")
    passwords = {
        name: secrets.token_urlsafe(12)
        for name in ("admin", "operator", "requester", "approver", "reviewer1", "reviewer2", "auditor")
    }
    admin = svc.users.init_admin("admin", passwords["admin"])
    roles = {
        "operator": "operator",
        "requester": "requester",
        "approver": "approver",
        "reviewer1": "reviewer",
        "reviewer2": "reviewer",
        "auditor": "auditor",
    }
    users = {name: svc.users.add(admin, name, passwords[name], [role]) for name, role in roles.items()}
    _step(console, 1, f"created users in {root}: " + ", ".join(f"{n} ({r})" for n, r in roles.items()))

    _step(console, 2, f"operator requests the enrolment of {DEMO_PERSON}, a consenting staff member")
    enrolled = svc.gallery.enroll(
        users["operator"], DEMO_PERSON, [photo], consent="signed staff consent form 17 (demo)", scope=["demo-cam"]
    )
    try:
        svc.gallery.approve(users["operator"], enrolled.identity.person_id)
    except KuzetError as exc:
        console.print(f"    the operator approving it too is refused: {exc.message}", highlight=False)
    svc.gallery.approve(users["approver"], enrolled.identity.person_id, reason="consent form checked (demo)")
    console.print(
        f"    approver (a different user) approves it: recognised on camera demo-cam only, until "
        f"{(svc.ctx.now().date() + timedelta(days=365)).isoformat()}"
    )

    today = svc.ctx.now().date()  # the service's today (UTC), which it checks the expiry against
    req = WatchlistRequest(
        list_name="missing-persons",
        subject_name="Grace Hopper",
        category="missing-person",
        legal_basis="missing-person-report",
        reference="MP-2026-0042",
        authority="City police department (demo)",
        expires=today + timedelta(days=30),
        note="reported missing by family",
    )
    entry_id = svc.watchlists.request(users["requester"], req, wanted_photo)
    _step(console, 3, f"requester files watchlist entry {entry_id} (missing person, report MP-2026-0042)")
    try:
        svc.watchlists.request(users["requester"], dataclasses.replace(req, note="civil activist"), wanted_photo)
    except KuzetError as exc:
        console.print(f"    a request labelled 'civil activist' is refused: {exc.message}", highlight=False)
    svc.watchlists.approve(users["approver"], entry_id, reason="report checked with the police (demo)")
    _step(console, 4, f"approver (a different user) approves entry {entry_id}")

    _step(console, 5, f"operator analyses {clip.name}: the astronaut, Grace Hopper and the cameraman (a stranger)")
    result = svc.analysis.analyze(users["operator"], str(clip), camera="demo-cam")
    table = Table("identity", "score", "start s", "end s", title=f"match events ({len(result.events)})")
    for e in result.events:
        table.add_row(e.identity, f"{e.score:.3f}", f"{e.start:.2f}", f"{e.end:.2f}")
    console.print(table)
    pending = {a.alert_id: a for a in svc.review.list(users["reviewer1"])} if result.alert_ids else {}
    for alert_id in result.alert_ids:
        alert = pending.get(alert_id)
        if alert is not None:
            console.print(f"    watchlist alert {alert_id}: {_scored(alert)}", highlight=False)
        console.print(f"    watchlist alert {alert_id} is a candidate, not a fact: it needs two reviewers")
        status = svc.review.decide(
            users["reviewer1"], alert_id, "confirm", reason="same face, same hair, same camera (demo)"
        )
        console.print(f"    reviewer1 confirms -> {status}")
        try:
            svc.review.decide(users["reviewer1"], alert_id, "confirm", reason="again")
        except KuzetError as exc:
            console.print(f"    reviewer1 confirming twice is refused: {exc.message}", highlight=False)
        status = svc.review.decide(users["reviewer2"], alert_id, "confirm", reason="agree with reviewer1 (demo)")
        console.print(f"    reviewer2 confirms -> {status}")
    report = svc.audit.verify(users["auditor"])
    _step(
        console,
        6,
        f"auditor verifies the ledger: {'OK' if report.ok else 'TAMPERED'} "
        f"({report.entries} entries, {report.checkpoints} signed checkpoints)",
    )
    console.print(f"{result.stats.unknown_tracks} face track(s) matched nobody: counted, not stored.")
    console.print("demo users (sign in with `kuzet --data-dir DIR login NAME`):", highlight=False)
    for name, pw in passwords.items():
        console.print(f"    {name}: {pw}", highlight=False)
    console.print(f"demo data: {root}", highlight=False)
    svc.close()
