"""The parts of `kuzet run` one at a time: backoff, secrets, live decoding, recording, signatures, metrics."""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path

import av
import pytest
from pydantic import ValidationError

from kuzet.config.models import CameraConfig, KuzetConfig, RecordConfig, RunConfig, WebhookConfig
from kuzet.config.secrets import Secrets, camera_url
from kuzet.core.errors import ConfigError, InputError
from kuzet.ingest.live import LiveStream
from kuzet.ingest.sources import FrameSampler
from kuzet.runtime.integrations import Notice, _visible, sign, verify_signature
from kuzet.runtime.metrics import render
from kuzet.runtime.recording import RecordingKeeper
from kuzet.runtime.worker import Backoff, WorkerSpec
from kuzet.store.crypto import DataCipher
from kuzet.store.media import MediaStore
from kuzet.store.status import CameraStatus, ServiceStatus, read_status, write_status
from tests.support.servers import RtspServer


def test_backoff_doubles_up_to_the_maximum_with_jitter_and_resets() -> None:
    b = Backoff(RunConfig(reconnect_initial_s=1, reconnect_max_s=8, reconnect_jitter=0.5), rng=random.Random(7))
    waits = [b.next() for _ in range(6)]
    for wait, base in zip(waits, [1, 2, 4, 8, 8, 8], strict=True):
        assert base * 0.5 <= wait <= base
    assert len({round(w, 6) for w in waits[3:]}) == 3  # jitter spreads cameras that failed together
    b.reset()
    assert b.next() <= 1.0


def test_secrets_resolve_from_file_and_environment_and_never_print(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text('gate_pw: "p@ss:w/rd"\n', encoding="utf-8")
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Secrets.load(path)
    path.chmod(0o600)
    secrets = Secrets.load(path)
    assert "p@ss" not in repr(secrets)
    monkeypatch.setenv("GATE_USER", "op erator")
    cam = CameraConfig(
        name="gate", source="rtsp://10.0.0.5:554/s1", username="env:GATE_USER", password="secret:gate_pw"
    )
    assert camera_url(cam, secrets) == "rtsp://op%20erator:p%40ss%3Aw%2Frd@10.0.0.5:554/s1"
    only_pw = CameraConfig(name="g", source="rtsp://viewer@10.0.0.5/s1", password="secret:gate_pw")
    assert camera_url(only_pw, secrets) == "rtsp://viewer:p%40ss%3Aw%2Frd@10.0.0.5/s1"
    with pytest.raises(ConfigError, match="secret 'other' is not in"):
        secrets.resolve("secret:other", what="x")
    monkeypatch.delenv("GATE_USER")
    with pytest.raises(ConfigError, match="GATE_USER is not set"):
        camera_url(cam, secrets)


def test_config_refuses_secrets_written_in_it() -> None:
    with pytest.raises(ValidationError, match="holds a password"):
        CameraConfig(name="gate", source="rtsp://admin:hunter2@10.0.0.5/s1")
    with pytest.raises(ValidationError, match="pattern"):
        CameraConfig(name="gate", source="rtsp://10.0.0.5/s1", password="hunter2")
    with pytest.raises(ValidationError, match="webhook URL holds a password"):
        WebhookConfig(url="https://u:p@hooks.example.org/x", secret="env:H")
    with pytest.raises(ValidationError, match="plain http off this machine"):
        WebhookConfig(url="http://hooks.example.org/x", secret="env:H")
    WebhookConfig(url="http://127.0.0.1:9000/x", secret="env:H")
    with pytest.raises(ValidationError, match="unique"):
        KuzetConfig.model_validate({"cameras": [{"name": "a"}, {"name": "a"}]})
    hook = {"url": "http://127.0.0.1:9000/x", "secret": "env:H"}
    with pytest.raises(ValidationError, match="webhook URL is listed twice"):  # each has its own outbox cursor
        KuzetConfig.model_validate({"run": {"webhooks": [hook, {**hook, "kinds": ["alert"]}]}})


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "../etc"])
def test_camera_names_cannot_walk_out_of_their_folder(name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        CameraConfig(name=name)


def test_mqtt_credentials_need_tls_off_this_machine() -> None:
    from kuzet.config.models import MqttConfig, MqttWitnessConfig

    with pytest.raises(ValidationError, match="without TLS"):
        MqttConfig(host="broker.example.org", username="env:U", password="env:P")
    with pytest.raises(ValidationError, match="without TLS"):
        MqttWitnessConfig(host="10.0.0.7", password="secret:P")
    MqttConfig(host="broker.example.org", username="env:U", password="env:P", tls=True)
    MqttConfig(host="127.0.0.1", username="env:U", password="env:P")  # loopback
    MqttConfig(host="broker.example.org")  # no credentials to leak


def test_webhook_signature_verifies_and_detects_changes() -> None:
    body = b'{"kind": "event"}'
    ts = str(int(time.time()))
    sig = sign("k3y", ts, body)
    assert verify_signature("k3y", ts, body, sig)
    assert not verify_signature("k3y", ts, body + b" ", sig)
    assert not verify_signature("other", ts, body, sig)
    assert not verify_signature("k3y", str(int(ts) - 3600), body, sign("k3y", str(int(ts) - 3600), body))  # replay


def test_integrations_leave_out_names_and_plates_unless_configured() -> None:
    n = Notice("passage", "road", {"line": "l1", "plate": "ABC123", "identity": "X"})
    assert _visible(n, include_identity=False, include_plates=False) == {"line": "l1"}
    assert _visible(n, include_identity=True, include_plates=True) == n.data


def test_metrics_render_counters_states_and_latency(tmp_path: Path) -> None:
    cam = CameraStatus(
        camera="gate",
        state="up",
        frames_analysed=42,
        frames_dropped=3,
        frames_searched=7,
        reconnects=2,
        node="n2/ab12",
        frames_regions=5,
        frames_followed=11,
    )
    for s in (0.004, 0.03, 0.03, 7.0):
        cam.observe_latency(s)
    write_status(tmp_path, ServiceStatus(pid=1, started=0, updated=5, state="running", cameras=[cam]))
    text = render(read_status(tmp_path)).decode()
    assert 'kuzet_frames_analysed_total{camera="gate"} 42.0' in text
    assert 'kuzet_frames_dropped_total{camera="gate"} 3.0' in text
    assert 'kuzet_frames_searched_total{camera="gate"} 7.0' in text
    assert 'kuzet_frames_regions_total{camera="gate"} 5.0' in text
    assert 'kuzet_frames_followed_total{camera="gate"} 11.0' in text
    assert 'kuzet_reconnects_total{camera="gate"} 2.0' in text
    assert 'kuzet_camera_state{camera="gate",state="up"} 1.0' in text
    assert 'kuzet_camera_node{camera="gate",node="n2/ab12"} 1.0' in text  # where its worker runs
    assert 'kuzet_inference_seconds_bucket{camera="gate",le="0.005"} 1.0' in text
    assert 'kuzet_inference_seconds_bucket{camera="gate",le="0.05"} 3.0' in text
    assert 'kuzet_inference_seconds_count{camera="gate"} 4.0' in text


def test_counters_add_up_across_worker_restarts() -> None:
    first = CameraStatus(camera="c", frames_analysed=10, frames_searched=4, events=2)
    first.observe_latency(0.02)
    second = CameraStatus(camera="c", frames_analysed=5, frames_searched=1, state="up")
    total = second.plus(first)
    got = (total.frames_analysed, total.frames_searched, total.events, total.latency_count, total.state)
    assert got == (15, 5, 2, 1, "up")


def test_live_stream_decodes_rtsp_and_the_newest_frame_wins(rtsp: RtspServer) -> None:
    stream = LiveStream(rtsp.url("stage"), fps=10, queue_size=2, open_timeout_s=5, read_timeout_s=5, max_pixels=10**7)
    try:
        time.sleep(2.5)  # analysis "falls behind": the queue holds only the 2 newest frames
        assert stream.queue_depth == 2
        counters = stream.counters
        assert counters.dropped >= 5 and counters.dropped == counters.sampled - 2
        a = stream.get(timeout=1)
        b = stream.get(timeout=1)
        assert a is not None and b is not None
        assert a.image.shape == (360, 640, 3)
        # the two kept are the newest: 0.1 s apart on the sampling grid, after every dropped one
        assert 0.05 < b.pts - a.pts < 0.15 and a.pts > 0.1 * counters.dropped
        pts = []
        with pytest.raises(InputError, match="stream ended"):
            while True:
                f = stream.get(timeout=5)
                assert f is not None, "a live frame every 0.1 s, not silence"
                pts.append(f.pts)
        assert len(pts) > 50 and all(y > x for x, y in itertools.pairwise(pts))
        assert stream.counters.decoded > stream.counters.sampled  # 30 fps decoded, 10 fps kept
    finally:
        stream.close()


def test_recording_keeps_playable_encrypted_segments_around_events(rtsp: RtspServer, tmp_path: Path) -> None:
    media = MediaStore(tmp_path / "media")
    cipher = DataCipher.load(tmp_path / "keys", create=True)
    config = RecordConfig(mode="events", segment_s=2, pre_roll_s=0.5, post_roll_s=0.5)
    keeper = RecordingKeeper("stage", config, media=media, cipher=cipher, cache_dir=tmp_path / "cache")
    stream = LiveStream(
        rtsp.url("stage"),
        fps=5,
        queue_size=64,
        open_timeout_s=5,
        read_timeout_s=5,
        max_pixels=10**7,
        make_sink=keeper.make_sink,
    )
    try:
        with pytest.raises(InputError, match="ended"):
            while True:
                stream.get(timeout=5)
    finally:
        stream.close()
    keeper.keep([(5.0, 5.2)])  # one event at 5 s into the stream
    kept = keeper.poll(final=True)
    assert 1 <= len(kept) <= 2 and keeper.deleted >= 2  # only the segments around 5 s (keyframes every ~3.4 s)
    assert not list((tmp_path / "cache").iterdir())  # nothing unencrypted left behind
    for rel in kept:
        assert rel.startswith("recordings/stage/") and rel.endswith(".mp4.enc")
        plain = tmp_path / "plain.mp4"
        plain.write_bytes(media.read_encrypted(rel, cipher=cipher))
        with av.open(str(plain)) as c:
            frames = sum(1 for _ in c.decode(video=0))
        assert frames >= 30  # the camera's own frames, copied without re-encoding


def test_a_worker_spec_never_shows_the_camera_password() -> None:
    spec = WorkerSpec(
        data_dir="/d", config_json="{}", camera="gate", actor="olga", url="rtsp://u:s3cret@h/s", fps=10, origin="o"
    )
    assert "s3cret" not in repr(spec) and "s3cret" not in str(spec)


def test_sampler_starts_again_when_a_camera_clock_jumps_back() -> None:
    sampler = FrameSampler(10)
    kept = [t for t in (100.0, 100.04, 100.1, 100.2) if sampler.keep(t)]
    assert kept == [100.0, 100.1, 100.2]
    assert sampler.keep(0.0) and sampler.keep(0.1)  # restarted stream: frames keep coming, none rejected
