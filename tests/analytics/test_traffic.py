"""Traffic rules on synthetic tracks (a scripted detector), and counting on the real car video."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kuzet.analytics.traffic import GroundPlane, crossing, signal_is_red
from kuzet.config.models import Calibration, TrafficConfig
from kuzet.core.errors import InputError
from kuzet.core.types import Detections, Frame, Image
from kuzet.pipeline.traffic import TrafficAnalyzer

pytestmark = pytest.mark.store

FPS = 10.0
BLANK: Image = np.zeros((400, 800, 3), np.uint8)


class ScriptedDetector:
    """Boxes from a function of time: a stand-in for the detector so each rule sees exact tracks."""

    name = "scripted"

    def __init__(self, script: Callable[[float], list[tuple[float, float, float, float]]]) -> None:
        self.script = script
        self.t = 0.0

    def detect(self, image: Image) -> Detections:
        boxes = self.script(self.t)
        if not boxes:
            return Detections.empty(with_landmarks=False)
        return Detections(
            boxes=np.asarray(boxes, np.float32),
            scores=np.ones(len(boxes), np.float32),
            labels=np.full(len(boxes), "vehicle"),
        )


def run(config: dict[str, object], script: Callable[[float], list[tuple[float, float, float, float]]], seconds: float,
        signal: Callable[[float], bool | None] | None = None) -> TrafficAnalyzer:  # fmt: skip
    detector = ScriptedDetector(script)
    cfg = TrafficConfig.model_validate({"plates": False, **config})
    analyzer = TrafficAnalyzer(detector, cfg, signal=signal)
    for i in range(int(seconds * FPS)):
        detector.t = i / FPS
        analyzer.process(Frame(image=BLANK, pts=i / FPS, index=i))
    analyzer.finish()
    return analyzer


def car_at(x: float, y: float) -> tuple[float, float, float, float]:
    """A 60x40 box whose bottom centre is (x, y)."""
    return (x - 30, y - 40, x + 30, y)


CALIBRATION = {"image": [[0, 0], [800, 0], [800, 400], [0, 400]], "ground": [[0, 0], [40, 0], [40, 20], [0, 20]]}
"""20 px per metre both ways."""


def test_crossing_sign_and_extent() -> None:
    line = ((0.0, 100.0), (200.0, 100.0))
    down = crossing(line, np.array([50.0, 90.0]), np.array([50.0, 110.0]))
    up = crossing(line, np.array([50.0, 110.0]), np.array([50.0, 90.0]))
    assert down == -up
    assert down != 0
    assert crossing(line, np.array([300.0, 90.0]), np.array([300.0, 110.0])) == 0  # beyond the segment's end
    assert crossing(line, np.array([50.0, 80.0]), np.array([60.0, 95.0])) == 0


def test_counting_line_counts_each_vehicle_once_per_direction() -> None:
    def script(t: float) -> list[tuple[float, float, float, float]]:
        boxes = []
        if t < 4:
            boxes.append(car_at(200, 50 + 80 * t))  # down across y=200 at t~1.9
        if t < 4:
            boxes.append(car_at(600, 380 - 80 * t))  # up across y=200 at t~2.25
        return boxes

    a = run({"lines": [{"name": "stop", "points": [[0, 200], [800, 200]]}]}, script, 5)
    assert a.stats.per_line == {"stop": {"in": 1, "out": 1}}
    assert len(a.passages) == 2
    down = next(p for p in a.passages if p.track_id == min(q.track_id for q in a.passages))
    assert 1.8 <= down.pts <= 2.1


def test_speed_from_calibration_with_uncertainty() -> None:
    # 200 px/s at 20 px/m = 10 m/s = 36 km/h
    a = run(
        {"lines": [{"name": "l", "points": [[400, 0], [400, 400]]}], "calibration": CALIBRATION},
        lambda t: [car_at(100 + 200 * t, 300)] if t < 3 else [],
        4,
    )
    (p,) = a.passages
    assert p.speed_kmh == pytest.approx(36.0, abs=0.5)
    assert p.speed_err_kmh is not None
    assert 0 < p.speed_err_kmh < 2


def test_ground_plane_refuses_degenerate_points() -> None:
    with pytest.raises(InputError, match="collinear"):
        GroundPlane(Calibration(image=[(0, 0), (1, 1), (2, 2), (3, 3)], ground=[(0, 0), (1, 0), (1, 1), (0, 1)]))


def test_red_light_only_while_red() -> None:
    cfg = {"red_light": {"stop_line": [[0, 200], [800, 200]]}}

    def moving(t: float) -> list[tuple[float, float, float, float]]:
        return [car_at(300, 50 + 100 * t)] if t < 3.5 else []  # crosses y=200 at t=1.5

    red = run(cfg, moving, 4, signal=lambda t: t < 2.0)
    green = run(cfg, moving, 4, signal=lambda t: t >= 2.0)
    assert [v.kind for v in red.violations] == ["red-light"]
    assert red.violations[0].pts == pytest.approx(1.5, abs=0.11)
    assert green.violations == []


def test_signal_colour() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    img[10:30, 10:30] = (230, 20, 20)  # lit red lamp
    assert signal_is_red(img, (5, 5, 30, 30))
    img[10:30, 10:30] = (20, 220, 60)  # lit green lamp
    assert not signal_is_red(img, (5, 5, 30, 30))


def test_wrong_way_in_a_one_way_zone() -> None:
    zone = {"name": "lane", "polygon": [[0, 0], [800, 0], [800, 400], [0, 400]], "rule": "one-way", "direction": [1, 0]}
    wrong = run({"zones": [zone]}, lambda t: [car_at(700 - 150 * t, 200)] if t < 4 else [], 5)
    right = run({"zones": [zone]}, lambda t: [car_at(100 + 150 * t, 200)] if t < 4 else [], 5)
    assert [v.kind for v in wrong.violations] == ["one-way"]
    assert wrong.violations[0].measurements["direction_cosine"] < -0.9
    assert right.violations == []


def test_no_stopping_after_the_allowed_time() -> None:
    zone = {"name": "bus stop", "polygon": [[200, 100], [600, 100], [600, 300], [200, 300]], "rule": "no-stopping",
            "max_stop_s": 5}  # fmt: skip

    def parks(stay: float) -> Callable[[float], list[tuple[float, float, float, float]]]:
        def script(t: float) -> list[tuple[float, float, float, float]]:
            if t < 2:
                return [car_at(100 + 150 * t, 250)]  # drives in, reaches x=400 at t=2
            if t < 2 + stay:
                return [car_at(400, 250)]
            return []

        return script

    long = run({"zones": [zone], "calibration": CALIBRATION}, parks(8), 11)
    short = run({"zones": [zone], "calibration": CALIBRATION}, parks(3), 6)
    assert [v.kind for v in long.violations] == ["no-stopping"]
    assert long.violations[0].measurements["stopped_s"] > 5
    assert short.violations == []


def test_speeding_needs_the_limit_beaten_beyond_the_uncertainty() -> None:
    cfg = {"calibration": CALIBRATION, "speed_limit_kmh": 30}
    fast = run(cfg, lambda t: [car_at(50 + 280 * t, 300)] if t < 2.5 else [], 3)  # 14 m/s = 50 km/h
    slow = run(cfg, lambda t: [car_at(50 + 100 * t, 300)] if t < 6 else [], 7)  # 5 m/s = 18 km/h
    assert [v.kind for v in fast.violations] == ["speeding"]
    assert len(fast.violations[0].frames) == 2  # first and last view, for the evidence package
    assert fast.violations[0].measurements["speed_kmh"] == pytest.approx(50.4, abs=1)
    assert slow.violations == []


def test_unknown_plate_region_fails_at_start() -> None:
    with pytest.raises(InputError, match="unknown plate region"):
        TrafficAnalyzer(ScriptedDetector(lambda t: []), TrafficConfig(plate_formats=["atlantis"]))


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "car-park.yaml"


def test_car_video_counting_line_matches_the_count_by_eye(tmp_path: Path, video_dir: Path) -> None:
    """car-detection.mp4, horizontal line across the middle, counted by eye frame by frame: 4 cars cross it.

    White Prius upwards (about frame 75-90), a grey car downwards and a red car upwards side by side (frames
    195-225), a white Porsche downwards (frames 325-336). Upwards is "out" for this line.
    """
    from kuzet.app import Kuzet
    from kuzet.config.loading import load_config

    svc = Kuzet(tmp_path / "data", load_config(EXAMPLE))
    admin = svc.init_admin("admin", "correct horse battery")
    result = svc.analyze(admin, str(video_dir / "car-detection.mp4"), camera="car-park")
    svc.close()
    assert result.traffic is not None
    assert result.traffic.per_line == {"middle": {"in": 2, "out": 2}}
    times = sorted(p.pts for p in result.traffic.passages)
    assert 5.5 < times[0] < 8.0
    assert 15.0 < times[1] < times[2] < 18.5
    assert 25.0 < times[3] < 27.5
    for p in result.traffic.passages:
        assert p.speed_kmh is not None
        assert p.speed_err_kmh is not None
        assert 5 < p.speed_kmh < 40  # a car park
        assert p.speed_err_kmh >= 0.1 * p.speed_kmh * 0.9  # the calibration's 10% scale error is in it
    assert result.traffic.calibration_note is not None
    assert "4.5 m" in result.traffic.calibration_note


def test_the_operators_view_shows_speeds_draws_lines_and_hides_plate_areas() -> None:
    """What the wall and the replay show of a traffic camera: current speeds, lines and arrows, plate areas hidden."""
    from kuzet.governance.redaction import plate_zones
    from kuzet.services.cameras import traffic_picture

    cfg = {"lines": [{"name": "l", "points": [[0, 200], [800, 200]]}], "calibration": CALIBRATION}
    detector = ScriptedDetector(lambda t: [car_at(100 + 200 * t, 300)])  # 36 km/h along the road
    analyzer = TrafficAnalyzer(detector, TrafficConfig.model_validate({"plates": False, **cfg}))
    for i in range(15):
        detector.t = i / FPS
        analyzer.process(Frame(image=BLANK, pts=i / FPS, index=i))
    (shown,) = analyzer.shown()
    assert shown.label == "vehicle" and shown.speed_kmh is not None
    assert shown.speed_kmh[0] == pytest.approx(36.0, abs=1.0)

    # a tall box gets bands at its top and bottom, a wide one at its left and right, over the middle of the other
    # side; every box also its bottom middle, where a plate is seen from the front or the back
    tall, wide = plate_zones(np.asarray([[0, 0, 40, 100]], np.float32)), plate_zones(np.asarray([[0, 0, 100, 40]]))
    assert tall.tolist() == [[4, 0, 36, 25], [4, 75, 36, 100], [4, 75, 36, 100]]
    assert wide.tolist() == [[0, 4, 25, 36], [75, 4, 100, 36], [10, 30, 90, 40]]
    rear = plate_zones(np.asarray([[100, 100, 280, 250]], np.float32))  # a car from behind, its plate low centre
    plate = (175, 215, 205, 235)
    assert any(z[0] <= plate[0] and z[1] <= plate[1] and z[2] >= plate[2] and z[3] >= plate[3] for z in rear)

    striped = np.zeros((400, 800, 3), np.uint8)
    striped[:, ::2] = 255  # fine detail a plate's characters would have
    picture = traffic_picture(striped.copy(), analyzer)
    x1, y1, _, y2 = (round(v) for v in shown.box)
    left_end = picture[y1 + 8 : y2 - 8, x1 + 1 : x1 + 8]
    assert left_end.std() < striped.std() / 2  # pixelated: the stripes are gone there
    assert (picture[200, 5] == (255, 200, 0)).all()  # the counting line, amber (RGB)
    assert (picture[210:240, 400] == (255, 200, 0)).all(axis=1).any()  # its arrow points to the "in" side, down
