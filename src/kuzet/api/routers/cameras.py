"""Cameras, their live status and their (redacted) picture."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response, StreamingResponse

from kuzet.api.deps import Actor, Name, Svc

router = APIRouter(prefix="/api/cameras", tags=["cameras"])


@router.get("")
def list_cameras(svc: Svc, actor: Actor) -> list[dict[str, object]]:
    """Configured and seen cameras with their analysis counts."""
    return svc.cameras.overview(actor)


@router.get("/status")
def camera_status(svc: Svc, actor: Actor) -> dict[str, Any]:
    """What `kuzet run` last reported: each live camera's state (up, reconnecting, stalled, failed...) and counters."""
    return asdict(svc.cameras.live_status(actor))


@router.get("/{name}/snapshot", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def camera_snapshot(name: Name, svc: Svc, actor: Actor) -> Response:
    """The live camera's latest picture for the camera wall: every face and plate pixelated (watching is audited)."""
    jpeg, taken = svc.cameras.snapshot(actor, name)
    headers = {"Cache-Control": "no-store", "X-Taken-At": f"{taken:.3f}"}
    return Response(jpeg, media_type="image/jpeg", headers=headers)


@router.get(
    "/{name}/replay", response_class=StreamingResponse, responses={200: {"content": {"multipart/x-mixed-replace": {}}}}
)
def camera_replay(
    name: Name, svc: Svc, actor: Actor, fps: Annotated[float, Query(gt=0, le=15)] = 5.0
) -> StreamingResponse:
    """The camera's picture (or its last analysed video) as MJPEG, detections drawn, every face and plate pixelated."""
    frames = svc.cameras.replay(actor, name, fps=fps)

    def parts() -> Iterator[bytes]:
        for jpeg in frames:
            yield b"--frame\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n"

    return StreamingResponse(parts(), media_type="multipart/x-mixed-replace; boundary=frame")


@router.get("/{name}/recordings")
def camera_recordings(name: Name, svc: Svc, actor: Actor) -> list[dict[str, object]]:
    """The camera's kept recording segments, newest first, each with the URL that plays it redacted (audited)."""
    return [
        {
            "path": r.path,
            "written_at": r.written_at.isoformat(timespec="seconds"),
            "bytes": r.bytes,
            "url": f"/api/cameras/{r.camera}/recordings/{r.segment}",
        }
        for r in svc.media.recordings(actor, camera=name)
    ]


@router.get(
    "/{name}/recordings/{segment:path}", response_class=FileResponse, responses={200: {"content": {"video/mp4": {}}}}
)
def camera_recording(name: Name, segment: str, svc: Svc, actor: Actor) -> FileResponse:
    """A kept segment as H.264 MP4 with every face and plate hidden (byte ranges served; each play audited).

    The first play of a segment waits for its redaction (every frame, as `kuzet recordings export` does).
    """
    copy = svc.media.play_recording(actor, name, segment)
    headers = {"Cache-Control": "private, no-store"}
    return FileResponse(copy, media_type="video/mp4", headers=headers)
