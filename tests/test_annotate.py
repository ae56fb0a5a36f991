"""Annotated readings (hcr.annotate; ``hcr read --annotate``, the web page's text view):
labels that never overlap, line boxes, and the old import path (hcr.report)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import handwritten_line
from helpers_train import single_thread  # noqa: F401  (fixture)

from hcr.annotate import (
    LINE_BOX_BGR,
    annotate_reading,
    annotated_reading_bgr,
    label_layout,
    plan_reading,
    rects_overlap,
)
from hcr.reader import ReadChar, ReadLine, ReadResult

pytestmark = pytest.mark.usefixtures("single_thread")


def no_two_overlap(rects: list[tuple[float, float, float, float]]) -> bool:
    return not any(rects_overlap(a, b) for a, b in combinations(rects, 2))


def test_rects_overlap() -> None:
    assert rects_overlap((0, 0, 10, 10), (5, 5, 10, 10))
    assert not rects_overlap((0, 0, 10, 10), (10, 0, 5, 5))  # touching edges
    assert not rects_overlap((0, 0, 10, 10), (0, 11, 10, 10))
    assert rects_overlap((0, 0, 10, 10), (2, 2, 1, 1))  # one inside the other


def test_labels_of_tightly_spaced_characters_do_not_overlap() -> None:
    boxes = [(x * 6.0, 50.0, 5.0, 9.0) for x in range(12)]  # characters 1 px apart
    sizes = [(14.0, 10.0)] * 12  # each label nearly three characters wide
    rects = label_layout(boxes, sizes, gap=2)
    assert len(rects) == 12 and no_two_overlap(rects)
    assert not any(rects_overlap(r, b) for r in rects for b in boxes)  # no label hides a character
    assert all((w, h) == s for (_, _, w, h), s in zip(rects, sizes))
    assert all(abs(x + w / 2 - (b[0] + b[2] / 2)) < 1e-9 for (x, _, w, _), b in zip(rects, boxes))  # centred on their character
    above = [r[1] + r[3] <= 50 for r in rects]
    assert above[0] and not above[1]  # the second label goes below the first's neighbour ...
    assert rects == label_layout(boxes, sizes, gap=2)  # ... the same way every time
    # room: every label just above its character
    spaced = [(x * 40.0, 50.0, 5.0, 9.0) for x in range(5)]
    assert all(r[1] == 50 - 2 - 10 for r in label_layout(spaced, [(14.0, 10.0)] * 5, gap=2))


def test_labels_stay_apart_when_every_place_is_taken() -> None:
    boxes = [(0.0, 0.0, 5.0, 5.0)] * 6  # one box six times: the places above and below run out
    rects = label_layout(boxes, [(8.0, 4.0)] * 6, gap=1, max_levels=1)
    assert no_two_overlap(rects)
    rects = label_layout([(0.0, 20.0, 10.0, 10.0), (12.0, 20.0, 10.0, 10.0)], [(40.0, 8.0)] * 2, width=100)
    assert rects[0][0] == 0 and no_two_overlap(rects)  # kept inside the image's width
    with pytest.raises(ValueError, match="2 boxes but 1"):
        label_layout([(0, 0, 1, 1)] * 2, [(1, 1)])


def _result(img: np.ndarray, lines: list[list[ReadChar]]) -> ReadResult:
    read = [ReadLine("".join(c.char for c in chars), (min(c.box[0] for c in chars), min(c.box[1] for c in chars),
                                                      max(c.box[0] + c.box[2] for c in chars) - min(c.box[0] for c in chars),
                                                      max(c.box[1] + c.box[3] for c in chars) - min(c.box[1] for c in chars)), chars)
            for chars in lines]
    return ReadResult("\n".join(ln.text for ln in read), read, image=img, size=(img.shape[1], img.shape[0]))


def test_a_dense_reading_gets_apart_labels_and_line_boxes(tmp_path: Path) -> None:
    img = np.full((60, 130), 240, np.uint8)
    line0 = [ReadChar(str(i % 10), 0.42 if i % 3 == 0 else 0.97, (4 + 10 * i, 6, 9, 14), uncertain=i % 3 == 0) for i in range(12)]
    line1 = [ReadChar("ab,"[i % 3], 0.9, (4 + 10 * i, 26, 9, 14), line=1, mark=i % 3 == 2) for i in range(12)]
    result = _result(img, [line0, line1])
    plan = plan_reading(result)
    assert len(plan.label_rects) == 24 and no_two_overlap(plan.label_rects)
    assert [t for t, *_ in plan.labels][:2] == ["0 0.42", "1"]  # uncertain answers show their confidence
    assert len(plan.line_boxes) == 2
    drawn = annotated_reading_bgr(result)
    left, top, right, bottom = plan.margin
    assert drawn.shape == (60 + top + bottom, 130 + left + right, 3) and top > 0  # grown to show the labels
    for x, y, w, h in plan.line_boxes:  # each line's box, in its own colour, on all four sides
        x0, y0, x1, y1 = round(x + left), round(y + top), round(x + w + left), round(y + h + top)
        for px, py in ((x0, (y0 + y1) // 2), (x1, (y0 + y1) // 2), ((x0 + x1) // 2, y0), ((x0 + x1) // 2, y1)):
            assert tuple(drawn[py, px]) == LINE_BOX_BGR
    path = annotate_reading(result, tmp_path / "sub" / "reading.png")
    assert np.array_equal(cv2.imread(str(path)), drawn) and [p.name for p in path.parent.iterdir()] == ["reading.png"]


def test_a_real_tight_reading(tmp_path: Path) -> None:
    from hcr.predictor import Predictor
    from hcr.reader import Reader

    img = handwritten_line("2357" * 3, height=24, gap=0.05)
    result = Reader(Predictor.load("digits", threshold=0.999)).read(img)  # most answers uncertain: wide labels
    assert len(result.characters) == 12
    plan = plan_reading(result)
    assert no_two_overlap(plan.label_rects) and len(plan.line_boxes) == len(result.lines) >= 1
    assert (annotated_reading_bgr(result) == LINE_BOX_BGR).all(axis=2).any()


def test_the_old_import_path_still_works() -> None:
    import hcr.report
    from hcr.annotate import ReadingLike

    assert hcr.report.annotate_reading is annotate_reading and hcr.report.ReadingLike is ReadingLike
    with pytest.raises(ValueError, match="no image"):
        annotate_reading(ReadResult("", []), "unused.png")
