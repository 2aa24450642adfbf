"""Decoding settings with real decoding: threads, skipping non-reference frames, hardware decoders, the status."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from kuzet.config import IngestConfig, KuzetConfig, load_config
from kuzet.config.models import DecodeConfig
from kuzet.core.errors import ConfigError, InputError
from kuzet.ingest import open_source
from kuzet.ingest.decode import hardware_absent
from kuzet.ingest.live import LiveStream
from kuzet.ingest.sources import VideoSource
from kuzet.runtime.metrics import render
from kuzet.store.status import CameraStatus, ServiceStatus, read_status, write_status


def _encode(path: Path, *, rate: int, frames: int, bframes: int) -> Path:
    """An H.264 clip whose B-frames no frame refers to (`b-pyramid=none`): `IBB..P` like many encoders."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 320, 192, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "30", "x264-params": f"bframes={bframes}:b-pyramid=none"}
        yy, xx = np.mgrid[0:192, 0:320]
        for i in range(frames):
            image = ((xx + 4 * i) % 256 ^ (yy // 8) * 8).astype(np.uint8)  # moving stripes: every frame differs
            rgb = np.repeat(image[:, :, None], 3, axis=2)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def bframes_30fps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 30 frames/s with two non-reference B-frames between references: references 0.1 s apart."""
    return _encode(tmp_path_factory.mktemp("dec") / "b30.mp4", rate=30, frames=90, bframes=2)


@pytest.fixture(scope="module")
def sparse_refs_10fps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s at 10 frames/s with three B-frames between references: references 0.4 s apart."""
    return _encode(tmp_path_factory.mktemp("dec") / "b10.mp4", rate=10, frames=40, bframes=3)


def test_decode_settings_parse_and_bad_values_are_clear_config_errors(tmp_path: Path) -> None:
    config = KuzetConfig.model_validate(
        {
            "ingest": {"decode": {"threads": 3, "thread_type": "frame"}},
            "cameras": [{"name": "gate", "decode": {"hwaccel": "none", "skip_nonref": "off"}}, {"name": "lobby"}],
        }
    )
    assert config.ingest.decode == DecodeConfig(hwaccel="auto", threads=3, thread_type="frame", skip_nonref="auto")
    gate, lobby = config.cameras
    assert gate.decode is not None and (gate.decode.hwaccel, gate.decode.skip_nonref) == ("none", "off")
    assert lobby.decode is None  # the ingest default applies
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - name: gate\n    decode: {hwaccel: nvenc, threads: -1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert "hwaccel" in text and "'cuda'" in text and "vaapi" in text  # names the choices
    assert "threads" in text


def test_threads_are_set_on_the_decoder(bframes_30fps: Path) -> None:
    frame_threads = IngestConfig(decode=DecodeConfig(threads=2, thread_type="frame"))
    with open_source(str(bframes_30fps), config=frame_threads) as src:
        assert isinstance(src, VideoSource) and len(list(src)) == 90
        context = src._stream.codec_context
        assert context.is_open
        assert (context.thread_count, context.thread_type.name) == (2, "FRAME")
    with open_source(str(bframes_30fps), config=IngestConfig(decode=DecodeConfig(threads=1))) as src:
        assert isinstance(src, VideoSource)
        next(iter(src))
        context = src._stream.codec_context
        assert (context.thread_count, context.thread_type.name) == (1, "SLICE")  # auto: slice
        assert src.decoder.describe() == "h264 software, 1 slice thread"


def test_nonref_skipping_decodes_fewer_frames_and_keeps_the_sampling(bframes_30fps: Path) -> None:
    def run(skip: str) -> tuple[list[float], int]:
        config = IngestConfig(decode=DecodeConfig(hwaccel="none", skip_nonref=skip))
        with open_source(str(bframes_30fps), fps=5, config=config) as src:
            frames = list(src)
        return [f.pts for f in frames], frames[-1].index + 1  # index counts decoded frames (to the last kept)

    skipped_pts, decoded_with_skip = run("auto")
    every_pts, decoded = run("off")
    assert decoded >= 85
    assert decoded_with_skip <= 32  # the I- and P-frames: one in three
    assert len(skipped_pts) == len(every_pts) == 15  # 3 s at 5 frames/s either way
    steps = np.diff(skipped_pts)
    assert np.allclose(steps, 0.2, atol=0.1 + 1e-6)  # on the 5 frames/s grid within half a period
    assert skipped_pts[-1] == pytest.approx(every_pts[-1], abs=0.1)
    # analysing every frame (fps None) never skips
    with open_source(str(bframes_30fps), config=IngestConfig()) as src:
        assert len(list(src)) == 90


class _Packets:
    """A recorder stand-in that counts the packets it is given."""

    def __init__(self) -> None:
        self.count = 0
        self.closed = False

    def write(self, packet: Any, at: float | None = None) -> None:
        self.count += 1

    def close(self) -> None:
        self.closed = True


def _drain(stream: LiveStream) -> list[float]:
    pts: list[float] = []
    with pytest.raises(InputError, match="stream ended"):
        while True:
            frame = stream.get(timeout=10)
            assert frame is not None
            pts.append(frame.pts)
    return pts


def test_live_stream_skips_nonref_frames_but_records_every_packet(bframes_30fps: Path) -> None:
    sink = _Packets()
    stream = LiveStream(
        str(bframes_30fps),
        fps=5,
        queue_size=100,
        open_timeout_s=5,
        read_timeout_s=5,
        max_pixels=10**7,
        make_sink=lambda _: sink,
        decode=DecodeConfig(threads=1),
    )
    try:
        pts = _drain(stream)
    finally:
        stream.close()
    c = stream.counters
    assert (c.packets, sink.count, sink.closed) == (90, 90, True)  # recordings get every packet
    assert c.decoded <= 35 and c.sampled == len(pts) == 15
    assert all(0.1 <= b - a <= 0.3 + 1e-6 for a, b in itertools.pairwise(pts))
    assert stream.decoder.startswith("h264 software, 1 slice thread; non-reference frames skipped (6")


def test_skipping_stops_when_the_reference_frames_are_too_far_apart(sparse_refs_10fps: Path) -> None:
    stream = LiveStream(
        str(sparse_refs_10fps), fps=5, queue_size=100, open_timeout_s=5, read_timeout_s=5, max_pixels=10**7
    )
    try:
        pts = _drain(stream)
    finally:
        stream.close()
    assert stream.counters.decoded >= 35  # skipping stopped at the first 0.4 s gap (a few frames were skipped)
    assert "every frame decoded (reference frames 0.40 s apart)" in stream.decoder
    # one analysis time came late (the gap that stopped skipping: 0.4 for 0.2, caught up at 0.5), then the grid
    assert pts[:3] == pytest.approx([0.0, 0.4, 0.5])
    assert len(pts) == 20 and np.allclose(np.diff(pts[2:]), [0.1] + [0.2] * 16, atol=1e-6)


@pytest.mark.parametrize("kind", ["vaapi", "cuda"])
def test_an_explicit_hardware_decoder_this_machine_lacks_is_a_clear_error(kind: str, bframes_30fps: Path) -> None:
    if hardware_absent(kind) is None:
        pytest.skip(f"this machine has {kind}")
    with pytest.raises(ConfigError, match=rf"decode.hwaccel: {kind}\) but this machine cannot") as err:
        LiveStream(
            str(bframes_30fps),
            fps=5,
            queue_size=4,
            open_timeout_s=5,
            read_timeout_s=5,
            max_pixels=10**7,
            decode=DecodeConfig(hwaccel=kind),
        )
    assert "set decode.hwaccel to auto" in (err.value.hint or "")
    with pytest.raises(ConfigError, match=kind):
        open_source(str(bframes_30fps), config=IngestConfig(decode=DecodeConfig(hwaccel=kind)))
    # auto on the same machine: software, silently
    with open_source(str(bframes_30fps), config=IngestConfig()) as src:
        assert isinstance(src, VideoSource) and src.decoder.hardware is None


def test_status_and_metrics_report_the_decoder(tmp_path: Path) -> None:
    cam = CameraStatus(camera="gate", state="up", decoder="h264 software, 2 slice threads")
    write_status(tmp_path, ServiceStatus(pid=1, started=0, updated=5, state="running", cameras=[cam]))
    status = read_status(tmp_path)
    assert status.cameras[0].decoder == "h264 software, 2 slice threads"
    text = render(status).decode()
    assert 'kuzet_camera_decoder{camera="gate",decoder="h264 software, 2 slice threads"} 1.0' in text
