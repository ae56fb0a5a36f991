"""Printed or handwritten, field mode and spacing (hcr.reading.page; issue 15 items 2-4)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from hcr.cli import main
from hcr.reading.page import PageLine, field_line, letter_spaced, printed_runs
from hcr.reader import CrnnReader, Reader
from hcr.segment import Glyph, Line

from helpers_train import single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def test_printed_runs_split_a_label_from_the_name_at_the_space() -> None:
    # "NOM :" then a handwritten name; the colon is a mark (no evidence)
    p = [0.95, 0.9, 0.97, None, 0.1, 0.2, 0.6, 0.05]
    spaces = [False, False, False, False, True, False, False, False]
    assert printed_runs(p, spaces) == [True, True, True, True, False, False, False, False]


def test_one_unsure_letter_does_not_flip_alone() -> None:
    assert printed_runs([0.1, 0.2, 0.8, 0.1], [False] * 4) == [False] * 4
    assert printed_runs([0.9, 0.9, 0.3, 0.9], [False] * 4) == [True] * 4
    assert printed_runs([], []) == []
    assert printed_runs([None, None], [False, False]) == [False, False]  # marks alone: handwriting


def test_letter_spaced_capitals_count_against_print() -> None:
    def glyphs(xs: list[int], h: int = 20, w: int = 12) -> list[Glyph]:
        return [Glyph(x, 0, np.ones((h, w), bool)) for x in xs]

    tight = glyphs([0, 13, 26, 39])  # a typeset word: gaps of 1 px
    spaced = glyphs([0, 20, 40, 60])  # block capitals 8 px (0.4 heights) apart
    assert letter_spaced(tight) == [False] * 4
    assert letter_spaced(spaced) == [True] * 4
    # a label then a comb-spaced name: only the name's letters stand apart
    label_name = glyphs([0, 13, 26, 70, 90, 110])
    assert letter_spaced(label_name) == [False, False, False, True, True, True]
    # marks (a colon's dots) are passed over; one character alone is no evidence
    colon = Glyph(40, 8, np.ones((3, 3), bool), ":")
    assert letter_spaced(glyphs([0, 13]) + [colon] + glyphs([60])) == [False, False, False, True]
    assert letter_spaced(glyphs([0])) == [False]
    # neat capitals the classifier takes for print (0.95) stay handwriting when letter-spaced;
    # the tight label beside them stays print
    p = [0.99, 0.99, 0.99, 0.95, 0.96, 0.95]
    assert printed_runs(p, [False, False, False, True, False, False]) == [True] * 6
    assert printed_runs(p, [False, False, False, True, False, False], letter_spaced(label_name)) == [True, True, True, False, False, False]


def _line(y: int, xs: list[int], h: int = 20) -> PageLine:
    glyphs = [Glyph(x, y, np.ones((h, 12), bool)) for x in xs]
    ln = Line(glyphs, [False] * len(glyphs), float(y), float(y + h))
    return PageLine(ln, [False] * len(glyphs), glyphs, [False] * len(glyphs))


def test_the_field_is_the_central_line_with_most_handwriting_not_a_cut_off_row() -> None:
    cut_top = _line(0, [10, 30, 50, 70, 90, 110, 130], h=9)  # a neighbouring row cut by the crop's edge
    name = _line(40, [10, 30, 50, 70])
    low = _line(80, [10, 30])
    assert field_line([cut_top, name, low], (110, 300)) == 1
    # a tight crop: the name touches the bottom edge too, but with whole characters
    cut_top, name = _line(0, list(range(10, 250, 20)), h=9), _line(16, [10, 30, 50, 70])
    assert field_line([cut_top, name], (36, 300)) == 1
    # a row touching the edge with characters as tall as any is not cut: the most ink wins
    assert field_line([_line(0, [10, 30, 50, 70, 90, 110]), _line(40, [10, 30])], (110, 300)) == 0
    printed = _line(40, [10, 30])
    printed.hand = []
    assert field_line([printed], (110, 300)) is None


# --------------------------------------------------------------------------- end to end


def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)  # Pillow's embedded Aileron: a printed typeface


def _handwritten(chars: str, height: int) -> list[np.ndarray]:
    """Real handwriting: the EMNIST characters of samples/ (their ink, found by the shared
    preprocessing whatever the style), dark on white, ``height`` pixels tall."""
    from hcr.preprocess import find_ink

    out = []
    for ch in chars:
        found = find_ink(next(SAMPLES.glob(f"char_{ch}_*")))
        ys, xs = np.nonzero(found.mask)
        ink = found.flattened()[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.float32)
        g = (255 - 235 * np.clip(ink / np.percentile(ink[ink > 0], 90), 0, 1)).astype(np.uint8)
        out.append(cv2.resize(g, (max(1, round(g.shape[1] * height / g.shape[0])), height), interpolation=cv2.INTER_AREA))
    return out


def _form(label: str | None, name: str, *, gap: float = 0.6, neighbour: bool = False) -> np.ndarray:
    """A scanned form field: a printed label, then a handwritten name with even gaps of
    ``gap`` letter heights; ``neighbour``: a printed row cut off by the crop's top edge."""
    img = Image.new("L", (520, 90), 250)
    draw = ImageDraw.Draw(img)
    if label:
        draw.text((8, 38), label, font=_font(15), fill=20)
    if neighbour:
        draw.text((8, -9), "DATE DE NAISSANCE  CLASSE", font=_font(15), fill=20)
    arr = np.asarray(img).copy()
    x = 130
    for g in _handwritten(name, 34):
        arr[28 : 28 + g.shape[0], x : x + g.shape[1]] = np.minimum(arr[28 : 28 + g.shape[0], x : x + g.shape[1]], g)
        x += g.shape[1] + int(gap * 34)
    return arr


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader.load()


def test_the_printed_label_is_left_out_and_marked_when_kept(reader: Reader) -> None:
    img = _form("NOM :", "RARE")
    res = reader.read(img)
    assert "NOM" not in res.text.upper() and res.text.replace(" ", "").upper() == "RARE"
    kept = Reader.load(keep_printed=True).read(img)
    words = [w for ln in kept.lines for w in ln.words]
    assert any(w.printed for w in words) and any(not w.printed for w in words)
    assert [w.text for w in words if not w.printed] == ["RARE"]
    assert all(c.printed for c in kept.characters if c.box[0] < 100)


def test_evenly_spaced_capitals_are_one_word_and_a_wide_gap_is_a_space(reader: Reader) -> None:
    assert reader.read(_form(None, "RARE", gap=0.9)).text == "RARE"  # comb-like spacing, no spaces
    img = _form(None, "RARE", gap=0.25)
    wide = _handwritten("ERA", 34)
    x = 130 + sum(g.shape[1] + int(0.25 * 34) for g in _handwritten("RARE", 34)) + 60
    for g in wide:  # a second word after a gap of about two letter widths
        img[28 : 28 + g.shape[0], x : x + g.shape[1]] = np.minimum(img[28 : 28 + g.shape[0], x : x + g.shape[1]], g)
        x += g.shape[1] + int(0.25 * 34)
    assert reader.read(img).text == "RARE ERA"


def test_field_mode_answers_the_value_without_label_or_neighbouring_row(reader: Reader) -> None:
    img = _form("PRENOM :", "REAR", neighbour=True)
    res = reader.read_field(img)
    assert res.field and len(res.lines) == 1 and res.text == "REAR" and not res.blank
    crnn = CrnnReader.load().read_field(img)
    assert crnn.field and len(crnn.lines) == 1 and "NOM" not in crnn.text.upper()


def test_a_field_with_no_handwriting_is_blank_and_a_printed_page_says_so(reader: Reader) -> None:
    res = reader.read_field(_form("NOM :", ""))
    assert res.blank and res.text == "" and res.printed_only
    page = Image.new("L", (600, 120), 255)
    ImageDraw.Draw(page).text((10, 30), "Name of the pupil: Class", font=_font(24), fill=0)
    res = reader.read(np.asarray(page))
    assert res.text == "" and res.printed_only
    assert reader.read(np.full((80, 200), 250, np.uint8)).blank  # an empty crop


def test_cli_field_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "field.png"
    cv2.imwrite(str(path), _form("NOM :", "RARE", neighbour=True))
    assert main(["read", "--field", "--json", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["text"] == "RARE" and out["field"] and not out["blank"]
    assert out["lines"][0]["words"] == [{"text": "RARE", "box": out["lines"][0]["words"][0]["box"], "printed": False}]
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), _form("NOM :", ""))
    assert main(["read", "--field", str(blank)]) == 0
    assert "(only printed text)" in capsys.readouterr().out


def test_real_form_names_are_read_in_field_mode(real_data_dir: Path) -> None:
    """real/form-names-dev (evaluation only; every third crop): guards the figures
    benchmarks/real_captures.py reports (CER 26%, 45% of names exact on every third crop);
    issue 15's targets (CER <= 15%, 60% exact) are not reached yet."""
    from hcr.metrics import levenshtein

    folder = real_data_dir / "real" / "form-names-dev"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    rows = list(csv.DictReader(open(folder / "labels.csv", newline="")))[::3]
    results = Reader.load().read_files([folder / r["file"] for r in rows], field=True)
    refs = [" ".join(r["text"].upper().split()) for r in rows]
    hyps = [" ".join(res.text.upper().split()) for res in results]
    cer = sum(levenshtein(r, h) for r, h in zip(refs, hyps)) / sum(len(r) for r in refs)
    exact = sum(r == h for r, h in zip(refs, hyps)) / len(rows)
    assert cer <= 0.30 and exact >= 0.40, (cer, exact)


def test_marks_a_space_apart_at_a_field_value_s_ends_are_trimmed() -> None:
    from hcr.reading.page import trim_marks

    def g(x: int, mark: str | None = None) -> Glyph:
        return Glyph(x, 0, np.ones((20, 10), bool), mark)

    hand = [g(0, "-"), g(30), g(45), g(60, "."), g(90, ".")]
    kept, spaces = trim_marks(hand, [False, True, False, False, True])
    assert [id(k) for k in kept] == [id(k) for k in hand[1:4]] and spaces == [False, False, False]  # a touching mark stays
    assert len(trim_marks([g(0, ".")], [False])[0]) == 1  # a value that is a mark alone is left as it is
