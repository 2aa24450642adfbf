"""The camera page: its recent events and its kept recordings, played redacted through an audited endpoint.

The recordings are made by the real recording code (`RecordingKeeper` and its `SegmentRecorder`) from the stage
clip, encrypted under the media folder as `kuzet run` keeps them.
"""

from __future__ import annotations

import io
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser
from sqlalchemy import text

from kuzet.config.cameras import RecordConfig
from kuzet.config.models import KuzetConfig
from kuzet.detect.face.centerface import CenterFaceDetector
from kuzet.runtime.recording import RecordingKeeper
from kuzet.services.container import Services
from kuzet.services.media import PLAYBACK_KEEP_S, playback_dir, sweep_playback
from kuzet.store.repositories.events import NewEvent, RunRecord
from kuzet.store.repositories.gallery import NewTemplate
from kuzet.web.app import create_app
from tests.conftest import PASSWORD
from tests.web.conftest import role_site, serve, sign_in
from tests.web.test_browser import _axe_problems

pytestmark = pytest.mark.store


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, video_dir: Path) -> Iterator[tuple[Services, TestClient]]:
    clip = video_dir / "short_hamilton_clip.mp4"
    config = KuzetConfig.model_validate(
        {"cameras": [{"name": "stage", "source": str(clip), "purpose": "safety on stage"}]}
    )
    with role_site(tmp_path_factory.mktemp("camera") / "data", config) as (svc, client):
        _record(svc, clip)
        _store_events(svc)
        yield svc, client


def _record(svc: Services, clip: Path) -> None:
    """Every 2-second segment of `clip`, kept and encrypted by the live recording code."""
    cache = svc.ctx.data_dir / "run" / "cache" / "stage"
    config = RecordConfig(mode="continuous", segment_s=2)
    keeper = RecordingKeeper("stage", config, media=svc.ctx.media, cipher=svc.ctx.cipher, cache_dir=cache)
    with av.open(str(clip)) as container:
        video = container.streams.video[0]
        sink = keeper.make_sink(video)
        for packet in container.demux(video):
            sink.write(packet)
        sink.close()
    assert len(keeper.poll(final=True)) >= 4


def _store_events(svc: Services) -> None:
    """Seven match events of the stage camera and one of another (as an analysis would store them)."""
    now = svc.ctx.now()
    with svc.uow.tx() as w:
        ann, _ = w.gallery.add_templates(
            "Ann", [NewTemplate(np.ones(128, np.float32), "a")], model="m", cipher=svc.ctx.cipher, now=now
        )
        for cam, n in (("stage", 7), ("hall", 1)):
            events = [NewEvent(ann.person_id, "Ann", 0.9, float(i), i + 1.0, i, "") for i in range(n)]
            w.events.save_run(RunRecord(cam, "src", now, 10, 2, 2, 1, 1), events, now=now)


def _sign_in(client: TestClient, name: str) -> None:
    client.cookies.clear()
    assert client.post("/login", data={"name": name, "password": PASSWORD}).status_code == 303


def _ledger(svc: Services, action: str) -> list[tuple[object, ...]]:
    with svc.uow.read() as r:
        rows = r.session.execute(
            text("SELECT actor, object, justification FROM audit_entries WHERE action = :a ORDER BY seq"), {"a": action}
        )
        return [tuple(row) for row in rows]


def _faces(data: bytes, detector: CenterFaceDetector) -> list[int]:
    """Faces CenterFace finds on each frame of an MP4."""
    with av.open(io.BytesIO(data)) as container:
        return [len(detector.detect(f.to_ndarray(format="rgb24")).boxes) for f in container.decode(video=0)]


def _players(html: str) -> list[str]:
    return re.findall(r'<video [^>]*src="(/api/cameras/stage/recordings/[^"]+)"', html)


def test_the_page_shows_recent_events_and_the_recordings_with_players(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _sign_in(client, "operator")
    page = client.get("/cameras/stage").text
    events = page.split('id="camera-events"', 1)[1].split("</table>", 1)[0]
    assert len(re.findall(r'<tr id="event-\d+">', events)) == 5  # the five newest of the seven
    assert 'src="/api/media/event/' in events and 'href="/events/' in events  # redacted thumbnails, detail pages
    assert 'href="/events?camera=stage"' in page
    assert 'id="camera-passages"' not in page  # not a traffic camera
    players = _players(page)
    assert players == [r["url"] for r in client.get("/api/cameras/stage/recordings").json()]
    assert 'preload="none"' in page  # nothing is redacted before someone presses play
    assert _ledger(svc, "recording.view") == []  # showing the page plays nothing


def test_a_recording_plays_redacted_and_each_play_is_ledgered(
    site: tuple[Services, TestClient], centerface: CenterFaceDetector
) -> None:
    svc, client = site
    _sign_in(client, "operator")
    kept = [r["path"] for r in client.get("/api/cameras/stage/recordings").json()]
    # the segment where CenterFace finds the most faces in the original
    originals = {rel: svc.ctx.media.read_encrypted(rel, cipher=svc.ctx.cipher) for rel in kept}
    counts = {rel: _faces(data, centerface) for rel, data in originals.items()}
    rel = max(counts, key=lambda k: sum(counts[k]))
    assert sum(counts[rel]) >= 30
    url = "/api/cameras/stage/recordings/" + rel.removeprefix("recordings/stage/").removesuffix(".enc")

    played = client.get(url)
    assert played.status_code == 200 and played.headers["content-type"] == "video/mp4"
    assert played.headers["accept-ranges"] == "bytes" and "no-store" in played.headers["cache-control"]
    data = played.content
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: a browser plays it as it arrives
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
    found = _faces(data, centerface)
    assert len(found) == len(counts[rel])  # every frame is there
    assert sum(found) == 0, f"faces left visible: {found}"
    part = client.get(url, headers={"Range": "bytes=100-1099"})  # the player's byte ranges
    assert part.status_code == 206 and part.content == data[100:1100]

    # one play, in two requests: one ledger entry naming the segment
    assert [e for e in _ledger(svc, "recording.view") if e[1] == rel] == [("operator", rel, "")]
    # the redacted copy waits owner-only for the next play; nothing else (no plain video) is left behind
    folder = playback_dir(svc.ctx.data_dir)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    copy = folder / rel.removeprefix("recordings/").removesuffix(".enc").replace("/", "~")
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no half-made copy
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600 and copy.read_bytes() == data
    made = copy.stat().st_ino
    assert not list((svc.ctx.data_dir / "run" / "cache" / "stage").iterdir())
    assert all(originals[rel] not in p.read_bytes() for p in svc.ctx.data_dir.rglob("*") if p.is_file())

    # another user's play is theirs in the ledger; the copy is not made again
    _sign_in(client, "auditor")
    assert client.get(url).content == data and copy.stat().st_ino == made  # the same file, not redacted again
    assert [a for a, o, _ in _ledger(svc, "recording.view") if o == rel] == ["operator", "auditor"]


def test_roles_without_the_right_are_refused_and_the_refusal_is_ledgered(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _sign_in(client, "operator")
    url = _players(client.get("/cameras/stage").text)[0]
    for role in ("requester", "approver"):
        _sign_in(client, role)
        refused = client.get(url)
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "PermissionDenied"
        assert client.get("/cameras/stage").status_code == 403  # nor the page (an HTML refusal)
    denied = [(a, o) for a, o, _ in _ledger(svc, "permission.denied")]
    assert ("requester", "play recordings") in denied and ("approver", "play recordings") in denied
    client.cookies.clear()
    assert client.get(url).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/api/cameras/stage/recordings/..%2F..%2F..%2Fkuzet.db",
        "/api/cameras/stage/recordings/2026/01/01/..%2F..%2F..%2F..%2F..%2Fkeys%2Fdata.mp4",
        "/api/cameras/stage/recordings/%2Fetc%2Fpasswd",
        "/api/cameras/..%2Fstage/recordings/2026/01/01/000000-a.mp4",
        "/api/cameras/../recordings/stage/2026/01/01/000000-a.mp4",
        "/api/cameras/stage/recordings/2026/01/01/000000-a.mp4.enc",
        "/api/cameras/stage/recordings/..%2F..%2Felsewhere%2F2026%2F01%2F01%2F000000-a.mp4",
        "/api/cameras/stage/recordings/2026/01/01/..%2F..%2F..%2F..%2F..%2Felsewhere/2026/01/01/000000-a.mp4",
    ],
)
def test_paths_outside_the_cameras_recordings_are_refused(site: tuple[Services, TestClient], path: str) -> None:
    svc, client = site
    _sign_in(client, "operator")
    # a real encrypted segment outside every camera's folder: what a path that leaves would find
    kept = next((svc.ctx.media.root / "recordings" / "stage").rglob("*.mp4.enc"))
    decoy = svc.ctx.media.root / "elsewhere" / "2026" / "01" / "01" / "000000-a.mp4.enc"
    decoy.parent.mkdir(parents=True, exist_ok=True)
    decoy.write_bytes(kept.read_bytes())
    copies = set(playback_dir(svc.ctx.data_dir).glob("*")) if playback_dir(svc.ctx.data_dir).is_dir() else set()
    refused = len(_ledger(svc, "recording.view_refused"))
    answer = client.get(path)
    assert answer.status_code in (404, 422) and answer.headers["content-type"] == "application/json"
    after = set(playback_dir(svc.ctx.data_dir).glob("*")) if playback_dir(svc.ctx.data_dir).is_dir() else set()
    assert after == copies  # nothing was redacted for it
    if answer.json()["error"]["type"] in ("InputError", "NotFoundError"):  # it reached the player: ledgered
        assert len(_ledger(svc, "recording.view_refused")) == refused + 1


def test_a_segment_is_played_only_as_a_recording_of_its_own_camera(site: tuple[Services, TestClient]) -> None:
    _, client = site
    _sign_in(client, "operator")
    segment = _players(client.get("/cameras/stage").text)[0].removeprefix("/api/cameras/stage/recordings/")
    assert client.get(f"/api/cameras/hall/recordings/{segment}").status_code == 404
    listed = client.get("/api/cameras/stage/recordings").json()
    assert {r["url"] for r in listed} == set(_players(client.get("/cameras/stage").text))
    assert client.get("/api/cameras/hall/recordings").json() == []


def test_the_player_loads_the_redacted_recording_in_chromium(
    site: tuple[Services, TestClient], browser: Browser
) -> None:
    svc, _ = site
    with serve(create_app(svc)) as base:
        page = sign_in(browser, base, "operator")
        page.goto(f"{base}/cameras/stage")
        assert _axe_problems(page, "/cameras/stage") == []
        page.evaluate("() => { const v = document.querySelector('video'); v.preload = 'auto'; v.load(); }")
        page.wait_for_function(
            "() => { const v = document.querySelector('video'); return v.error !== null || v.readyState >= 1; }",
            timeout=90_000,
        )
        state = page.evaluate(
            "() => { const v = document.querySelector('video');"
            " return {error: v.error && v.error.code, ready: v.readyState, width: v.videoWidth}; }"
        )
        assert state["error"] is None and state["ready"] >= 1 and state["width"] == 640, state
        page.evaluate("() => document.querySelector('video').play()")  # decoded and played, not only parsed
        page.wait_for_function(
            "() => { const v = document.querySelector('video'); return v.ended || v.currentTime > 0.1; }",
            timeout=30_000,
        )
        assert page.evaluate("document.querySelector('video').error") is None
        page.context.close()


def test_redacted_copies_go_with_their_recording_and_when_unplayed(site: tuple[Services, TestClient]) -> None:
    svc, client = site
    _sign_in(client, "operator")
    urls = _players(client.get("/cameras/stage").text)
    for url in urls[:2]:
        assert client.get(url).status_code == 200
    folder = playback_dir(svc.ctx.data_dir)
    copies = {p.name for p in folder.iterdir()}
    assert len(copies) >= 2
    gone = urls[0].removeprefix("/api/cameras/")
    svc.ctx.media.delete("recordings/" + gone.replace("/recordings/", "/", 1) + ".enc")  # as retention deletes it
    svc.retention.run(None)
    left = {p.name for p in folder.iterdir()}
    assert gone.replace("/recordings/", "/", 1).replace("/", "~") not in left and len(left) == len(copies) - 1
    assert client.get(urls[0]).status_code == 404
    now = svc.ctx.now().timestamp()
    assert sweep_playback(svc.ctx.media, folder, now=now + PLAYBACK_KEEP_S + 60) == len(left)  # an hour unplayed
    assert not list(folder.iterdir())
