from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from kuzet.config import IngestConfig
from kuzet.core.errors import InputError
from kuzet.ingest import FrameSampler, load_image, open_source, redact_url
from kuzet.ingest.images import load_image_and_digest
from kuzet.ingest.sources import endpoint


def test_video_frames_carry_stream_timestamps(video_dir: Path) -> None:
    with open_source(str(video_dir / "short_hamilton_clip.mp4")) as src:
        assert src.expected_frames == 275
        frames = list(src)
    assert len(frames) == 275
    pts = np.array([f.pts for f in frames])
    assert np.all(np.diff(pts) > 0)
    assert pts[-1] == pytest.approx(10.0, abs=0.1)  # a 10 s clip: stream time, not decode time
    assert frames[0].image.shape == (360, 640, 3)
    assert not frames[0].still


def test_fps_sampling_keeps_requested_rate(video_dir: Path) -> None:
    with open_source(str(video_dir / "car-detection.mp4"), fps=2) as src:
        frames = list(src)
    pts = np.array([f.pts for f in frames])
    assert 55 <= len(frames) <= 62  # about 30 s at 2 frames per second
    # The clip runs at 12.5 frames/s (0.08 s apart), so kept frames are the nearest ones after each 0.5 s step.
    assert np.all(np.abs(np.diff(pts) - 0.5) <= 0.08 + 1e-6)
    assert np.mean(np.diff(pts)) == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("fps", [0.0, -1.0, float("nan"), float("inf")])
def test_a_rate_that_is_not_a_positive_number_is_refused(video_dir: Path, fps: float) -> None:
    """NaN slips past `fps <= 0` (and analysed one frame); infinity analysed every frame without saying so."""
    with pytest.raises(InputError, match="--fps must be a positive number"):
        open_source(str(video_dir / "car-detection.mp4"), fps=fps)


def test_sampler_jumps_over_gaps() -> None:
    s = FrameSampler(1.0)
    kept = [t for t in [0.0, 0.4, 1.0, 1.5, 5.2, 5.9, 6.2] if s.keep(t)]
    assert kept == [0.0, 1.0, 5.2, 6.2]


def test_early_exit_stops_decoder_thread(video_dir: Path) -> None:
    src = open_source(str(video_dir / "one-by-one-person-detection.mp4"), config=IngestConfig(queue_size=2))
    with src:
        for i, _ in enumerate(src):
            if i == 3:
                break
    thread = src._thread
    assert thread is not None and not thread.is_alive()


def test_image_and_folder_sources(tmp_path: Path, faces_dir: Path) -> None:
    photo = faces_dir / "face_recognition_examples" / "lin-manuel-miranda.png"
    with open_source(str(photo)) as src:
        frames = list(src)
    assert len(frames) == 1 and frames[0].still
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), i * 40, np.uint8)).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    with open_source(str(folder)) as src:
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2]
    assert all(f.still for f in frames)


def test_webp_behind_jpg_name_is_decoded(faces_dir: Path) -> None:
    img = load_image(faces_dir / "deepface_13id" / "img47.jpg", max_pixels=50_000_000)
    assert img.ndim == 3 and img.dtype == np.uint8


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: p.mkdir(), "holds no images"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"this is not a video at all" * 100), "cannot be decoded"),
        (lambda p: None, "does not exist"),
    ],
    ids=["empty-folder", "empty-file", "text-file", "missing"],
)
def test_bad_sources_raise_clear_errors(tmp_path: Path, make: object, fragment: str) -> None:
    target = tmp_path / "thing.mp4"
    make(target)
    with pytest.raises(InputError, match=fragment) as info, open_source(str(target)) as src:
        list(src)
    assert info.value.hint
    assert "thing.mp4" in info.value.message or "folder" in info.value.message


def test_truncated_video_is_refused(tmp_path: Path, video_dir: Path) -> None:
    data = (video_dir / "car-detection.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"), open_source(str(cut)) as src:
        list(src)
    moov_last = (video_dir / "short_hamilton_clip.mp4").read_bytes()
    cut.write_bytes(moov_last[: len(moov_last) // 2])
    with pytest.raises(InputError, match="damaged or truncated"), open_source(str(cut)) as src:
        list(src)


def test_truncated_image_is_refused(tmp_path: Path, faces_dir: Path) -> None:
    data = (faces_dir / "deepface_13id" / "img1.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="damaged or truncated"):
        load_image(cut, max_pixels=50_000_000)


def test_pixel_cap(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(big)
    with pytest.raises(InputError, match="over the cap"):
        load_image(big, max_pixels=100_000)


def test_a_photo_is_read_once_and_never_beyond_what_the_pixel_cap_allows(tmp_path: Path, faces_dir: Path) -> None:
    photo = faces_dir / "deepface_13id" / "img1.jpg"
    pixels, sha = load_image_and_digest(photo, max_pixels=50_000_000)
    assert sha == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert np.array_equal(pixels, load_image(photo, max_pixels=50_000_000))
    padded = tmp_path / "padded.jpg"  # a valid JPEG with 3 MiB of rubbish after it: not read into memory whole
    padded.write_bytes(photo.read_bytes() + b"\0" * 3 * 2**20)
    with pytest.raises(InputError, match=r"larger than any image within the pixel cap \(1,448,576 bytes\)"):
        load_image_and_digest(padded, max_pixels=100_000)
    with pytest.raises(InputError, match="does not exist"):
        load_image_and_digest(tmp_path / "gone.jpg", max_pixels=100_000)


def test_video_pixel_cap(video_dir: Path) -> None:
    with (
        pytest.raises(InputError, match="pixel cap"),
        open_source(str(video_dir / "short_hamilton_clip.mp4"), config=IngestConfig(max_pixels=100_000)) as src,
    ):
        list(src)


def test_unreachable_stream_fails_fast() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(InputError, match="cannot open stream") as info:
        open_source(f"rtsp://user:secret@127.0.0.1:{port}/cam", config=IngestConfig(open_timeout_s=2))
    assert time.monotonic() - start < 10
    assert "secret" not in str(info.value)


def test_http_source_is_decoded(video_dir: Path) -> None:
    """A real HTTP server on loopback serves the clip; PyAV reads it as a network source."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(video_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # car-detection.mp4 has its index first, so it streams without range requests.
        url = f"http://127.0.0.1:{server.server_address[1]}/car-detection.mp4"
        with open_source(url, fps=5) as src:
            frames = list(src)
        assert 140 <= len(frames) <= 155
    finally:
        server.shutdown()
        server.server_close()


def test_redact_url() -> None:
    assert redact_url("rtsp://admin:pw@10.0.0.5:554/s1") == "rtsp://10.0.0.5:554/s1"
    assert redact_url("rtsp://10.0.0.5/s1") == "rtsp://10.0.0.5/s1"
    # tokens in the query or the path are secrets too
    assert redact_url("http://cam.example/mjpg?token=abc123&res=hd") == "http://cam.example/mjpg?token=***&res=***"
    assert redact_url("rtsp://10.0.0.5/live/3f9a0c77de1144aa9bde") == "rtsp://10.0.0.5/live/***"
    assert "Channels/101" in redact_url("rtsp://10.0.0.5/Streaming/Channels/101")
    assert endpoint("https://hooks.example.org/services/T0/B0/s3cr3t?x=1") == "https://hooks.example.org"


def test_unsupported_scheme() -> None:
    with pytest.raises(InputError, match="unsupported URL scheme"):
        open_source("ftp://example/video.mp4")


def test_bad_fps() -> None:
    with pytest.raises(InputError, match="--fps"):
        open_source("whatever.mp4", fps=0)


def test_audio_only_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(InputError, match="no video stream"):
        open_source(str(path))
