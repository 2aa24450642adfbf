"""Redaction's own recall-first face finding, and faces carried across video frames when a search misses them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kuzet.config.models import RedactionConfig
from kuzet.core.geometry import iou_matrix
from kuzet.core.types import Detections, Image
from kuzet.detect.face.recall import RecallFaceFinder
from kuzet.governance.redaction import _BoxMotion, production_redactor
from kuzet.ingest import load_image

EXAMPLES = "face_recognition_examples"


def test_faces_missed_by_one_search_stay_hidden_for_a_while() -> None:
    motion = _BoxMotion(hold=5)
    face = np.asarray([[100, 100, 140, 140]], np.float32)
    motion.observe(face, 0)
    motion.observe(face + np.asarray([8, 0, 8, 0], np.float32), 2)  # moving right, 4 px a frame
    motion.observe(np.zeros((0, 4), np.float32), 4)  # this search missed it
    carried = motion.at(6)
    assert len(carried) >= 1 and carried[:, 0].max() >= 120  # still hidden, where it was heading
    motion.observe(np.zeros((0, 4), np.float32), 9)  # missed again, past the hold: let go
    motion.observe(np.zeros((0, 4), np.float32), 10)
    assert len(motion.at(11)) == 0


def test_small_faces_recognition_drops_are_found_for_redaction(faces_dir: Path) -> None:
    """A group photo shrunk until its faces are about 13 px: the recall-first finder still finds every one."""
    from kuzet.detect.face.centerface import CenterFaceDetector

    group = faces_dir / "bbt_8id_gray" / "group_photos_unlabelled" / "bbt4.jpg"  # six faces of 77-104 px
    image = load_image(group, max_pixels=10**8)
    small: Image = np.ascontiguousarray(cv2.resize(image, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA))
    full = CenterFaceDetector().detect(image)
    assert len(full) == 6
    assert len(CenterFaceDetector().detect(small)) == 0  # recognition's detector drops them (min_face 20)
    found: Detections = RecallFaceFinder().detect(small)
    overlap = iou_matrix(full.boxes * 0.15, found.boxes)
    assert (overlap.max(axis=1) >= 0.3).all()  # each of the six faces, where it is


def test_the_subject_stays_visible_even_when_both_detectors_find_it(faces_dir: Path) -> None:
    image = load_image(faces_dir / EXAMPLES / "lin-manuel-miranda.png", max_pixels=10**8)
    redactor = production_redactor(RedactionConfig(), find_plates=False)
    faces = redactor.faces.detect(image)
    assert len(faces)
    subject = faces.boxes[np.argmax(faces.scores)]
    kept = redactor.redact_image(image, keep=subject)
    hidden = redactor.redact_image(image)
    assert kept.faces == 0 and hidden.faces >= 1
    assert np.array_equal(kept.image, image)
