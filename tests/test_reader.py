"""hcr.reader / hcr.segment: reading lines, fields and pages of separately written characters.

The synthetic images are written with OpenCV's handwriting-like Hershey script font, dark ink
on white paper, and read with the shipped ``chars`` model; the real-data test composes lines
from EMNIST dev-val glyphs (skipped without the data).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import draw_glyph
from hcr.cli import main
from hcr.errors import HcrError, InputError
from hcr.metrics import cer
from hcr.predictor import Predictor
from hcr.preprocess import MAX_PIXELS, find_ink, preprocess
from hcr.segment import Glyph
from hcr.reader import Lexicon, Reader, ReadResult, split_charset
from hcr.segment import FIELD_SPACING, find_spaces, segment

from helpers_train import single_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("single_thread")

SCRIPT = cv2.FONT_HERSHEY_SCRIPT_SIMPLEX


def sheet(h: int = 300, w: int = 700) -> np.ndarray:
    """White paper with faint noise (a scan)."""
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(245, 2.0, (h, w)), 0, 255).astype(np.uint8)


def write(img: np.ndarray, text: str, x: int, y: int, scale: float = 3.0, thickness: int = 8) -> np.ndarray:
    """Dark handwriting-like text with its baseline at ``y``: cv2's Hershey script, a
    machine-drawn font, so the readers here run without the printed model (or the command
    line with --keep-printed); tests/test_page.py covers printed labels with real
    handwriting."""
    cv2.putText(img, text, (x, y), SCRIPT, scale, 30, thickness, cv2.LINE_AA)
    return img


@pytest.fixture(scope="module")
def chars() -> Predictor:
    return Predictor.load("chars")


@pytest.fixture(scope="module")
def reader(chars: Predictor) -> Reader:
    return Reader(chars)


@pytest.fixture(scope="module")
def digits_reader() -> Reader:
    return Reader.load("chars", charset="digits", printed=None)  # the writing is a Hershey font (write)


def _overlaps(box: tuple[int, int, int, int], x0: int, y0: int, x1: int, y1: int) -> bool:
    x, y, w, h = box
    return x < x1 and x + w > x0 and y < y1 and y + h > y0


# --------------------------------------------------------------------------- the cases


def test_an_empty_page_gives_empty_text(reader: Reader) -> None:
    for img in (sheet(1200, 900), np.zeros((300, 400, 4), np.uint8), np.full((50, 80), 255, np.uint8)):
        res = reader.read(img)
        assert res.text == "" and res.lines == [] and res.characters == [] and res.error is None
    # an empty form field: its box is no writing either
    field = sheet()
    cv2.rectangle(field, (40, 70), (560, 240), 40, 3)
    assert reader.read(field).text == ""


def test_a_single_character(reader: Reader) -> None:
    glyph = cv2.resize(draw_glyph(28), (112, 112), interpolation=cv2.INTER_CUBIC)
    img = sheet(240, 300)
    img[60:172, 90:202] = np.minimum(img[60:172, 90:202], 255 - glyph)
    res = reader.read(img)
    assert res.text == "7"
    (c,) = res.characters
    x, y, w, h = c.box
    assert 90 <= x <= 130 and 60 <= y <= 100 and x + w <= 202 and y + h <= 172
    assert c.confidence > 0.5 and c.top_k[0][0] == "7" and not c.mark


def test_two_lines_come_in_reading_order(digits_reader: Reader) -> None:
    img = sheet(420, 700)
    write(img, "12", 300, 150)  # the first line starts right of the second
    write(img, "345", 60, 330)
    res = digits_reader.read(img)
    assert res.text == "12\n345"
    assert [ln.text for ln in res.lines] == ["12", "345"]
    assert res.lines[0].box[1] < res.lines[1].box[1]
    assert [c.line for c in res.characters] == [0, 0, 1, 1, 1]


def test_i_and_j_keep_their_dots(reader: Reader) -> None:
    img = write(sheet(), "ij", 60, 180)
    n_parts = cv2.connectedComponents((img < 128).astype(np.uint8))[0] - 1
    assert n_parts == 4  # two stems, two dots
    res = reader.read(img)
    assert res.text == "ij"
    dots_top = int(np.flatnonzero((img < 128).any(axis=1))[0])
    assert all(c.box[1] <= dots_top + 2 for c in res.characters)  # each box holds its dot


def test_a_touching_pair_is_split(digits_reader: Reader) -> None:
    img = sheet()
    (w4, _), _ = cv2.getTextSize("4", SCRIPT, 3.0, 8)
    write(img, "4", 60, 200)
    write(img, "7", 60 + w4 - 22, 200)
    assert cv2.connectedComponents((img < 128).astype(np.uint8))[0] - 1 == 1  # one blob
    res = digits_reader.read(img)
    assert res.text == "47"
    a, b = res.characters
    assert a.box[0] < b.box[0] and a.box[0] + a.box[2] <= b.box[0] + 1


def test_a_boxed_form_field_ignores_its_box(digits_reader: Reader) -> None:
    img = write(sheet(), "2024", 80, 190)
    cv2.rectangle(img, (40, 70), (560, 240), 40, 3)
    rng = np.random.default_rng(1)
    for x, y in zip(rng.integers(0, 700, 30), rng.integers(0, 300, 30)):  # specks
        cv2.circle(img, (int(x), int(y)), 1, 40, -1)
    res = digits_reader.read(img)
    assert res.text == "2024"
    for c in res.characters:  # no box touches the frame's lines
        assert not _overlaps(c.box, 36, 66, 565, 75) and not _overlaps(c.box, 36, 236, 565, 245)
        assert not _overlaps(c.box, 36, 66, 45, 245) and not _overlaps(c.box, 555, 66, 565, 245)


def test_underlines_ruled_paper_and_comb_fields(reader: Reader, digits_reader: Reader) -> None:
    img = write(sheet(), "Anna", 80, 190)
    cv2.line(img, (30, 215), (600, 215), 40, 3)  # underline
    assert reader.read(img).text == "Anna"
    ruled = sheet(400, 900)
    for y in range(40, 400, 70):
        cv2.line(ruled, (0, y), (900, y), 90, 2)
    cv2.line(ruled, (60, 0), (60, 400), 90, 2)  # margin
    write(ruled, "hello", 100, 170)
    write(ruled, "young", 100, 310)  # the y and g cross a rule
    assert reader.read(ruled).text == "hello\nyoung"
    comb = sheet(300, 800)
    for k, d in enumerate("305182"):
        cv2.rectangle(comb, (40 + k * 110, 80), (150 + k * 110, 230), 40, 2)
        write(comb, d, 65 + k * 110, 190)
    assert digits_reader.read(comb).text == "305182"  # one character per box, no spaces


def _huge_png() -> bytes:
    """A valid PNG header claiming 10000 x 10000 pixels (a decompression bomb)."""
    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, format="PNG")
    buf = out.getvalue()
    ihdr = struct.pack(">IIBBBBB", 10000, 10000, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return buf[:8] + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk)) + buf[33:]


def test_a_huge_or_corrupt_image_gives_a_clear_error(reader: Reader, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    huge = tmp_path / "huge.png"
    huge.write_bytes(_huge_png())
    with pytest.raises(InputError, match="corrupt.png: .*(corrupt|not an image)"):
        reader.read(corrupt)
    with pytest.raises(InputError, match="huge.png: image too large"):
        reader.read(huge)
    with pytest.raises(InputError, match="too large"):
        reader.read(np.zeros((MAX_PIXELS // 1000 + 1, 1000), np.uint8))
    good = tmp_path / "good.png"
    Image.fromarray(write(sheet(), "7", 60, 200)).save(good)
    code = main(["read", str(corrupt), str(huge), str(good), "--model", "digits", "--keep-printed"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    lines = out.strip().splitlines()
    assert len(lines) == 3 and "ERROR" in lines[0] and "corrupt" in lines[0] and "too large" in lines[1]
    assert lines[2] == f"{good}: 7"
    assert "2 failed" in err


# --------------------------------------------------------------------------- the command


def test_cli_read_json_and_annotate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "field.png"
    Image.fromarray(write(write(sheet(420, 700), "12", 60, 150), "345", 60, 330)).save(img)
    ann = tmp_path / "ann"
    code = main(["read", str(img), "--charset", "digits", "--json", "--annotate", str(ann), "--keep-printed"])
    out, err = capsys.readouterr()
    assert code == 0, err
    (obj,) = [json.loads(line) for line in out.splitlines()]
    assert obj["file"] == str(img) and obj["text"] == "12\n345" and obj["error"] is None
    assert len(obj["characters"]) == 5
    for c in obj["characters"]:
        assert set(c) >= {"char", "confidence", "box", "top_k"} and c["char"].isdigit()
        assert len(c["box"]) == 4 and all(isinstance(v, int) for v in c["box"]) and 0 <= c["confidence"] <= 1
    written = ann / "field.png"
    assert written.exists() and f"annotated: {written}" in err
    assert Image.open(written).size == (700, 420)
    # plain text, one line per image line; a charset with punctuation
    date = tmp_path / "date.png"
    Image.fromarray(write(sheet(), "12.03", 60, 200)).save(date)
    assert main(["read", str(date), "--charset", "0123456789.", "--keep-printed"]) == 0
    assert capsys.readouterr().out.strip() == f"{date}: 12.03"
    assert main(["read", str(date), "--charset", "digits", "--keep-printed"]) == 0  # named sets allow no mark
    assert capsys.readouterr().out.strip() == f"{date}: 1203"


def test_cli_read_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "a.png"
    Image.fromarray(sheet(50, 50)).save(img)
    assert main(["read", str(img), "--lexicon", str(tmp_path / "missing.txt")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"hcr: error: lexicon {tmp_path / 'missing.txt'}: file not found"
    assert main(["read", str(img), "--charset", ".-"]) == 2
    assert "only punctuation" in capsys.readouterr().err
    assert main(["read", str(img)]) == 0
    assert capsys.readouterr().out.strip() == f"{img}: (no writing found)"


# --------------------------------------------------------------------------- one preprocessing path


def test_each_character_reaches_the_model_through_preprocess(reader: Reader, chars: Predictor) -> None:
    glyph = draw_glyph(28)
    canvas = np.zeros((60, 100), np.uint8)  # a data-set glyph placed on a larger dark canvas
    canvas[16:44, 36:64] = glyph
    res = reader.read(canvas)
    (c,) = res.characters
    assert c.input is not None
    np.testing.assert_array_equal(c.input, preprocess(glyph, chars.spec).image)


def test_find_ink_is_preprocess_ink_detection(chars: Predictor) -> None:
    img = write(sheet(), "Ab3", 60, 200)
    found = find_ink(img, chars.spec)
    staged = preprocess(img, chars.spec, stages=True).stages
    assert found.inverted and found.mask is not None
    np.testing.assert_array_equal(found.mask.astype(np.uint8) * 255, staged["mask"])
    np.testing.assert_array_equal(found.flattened(), staged["flattened"])


# --------------------------------------------------------------------------- pieces


def test_spaces_follow_the_lines_own_spacing() -> None:
    assert find_spaces([4, 6, 30, 5, 7, 28, 3], 50) == [False, False, True, False, False, True, False]
    assert find_spaces([6, 8, 7], 50) == [False, False, False]
    assert find_spaces([], 50) == []
    # evenly spaced letters (block capitals, a comb field) are one word however wide the gaps
    assert find_spaces([30, 32, 29], 20) == [False, False, False]
    assert find_spaces([18, 22, 20, 19, 21, 20], 20) == [False] * 6
    # letter-spaced capitals with a word gap: the gaps are bimodal, the wide one is a space
    assert find_spaces([18, 22, 20, 52, 19, 21], 20) == [False, False, False, True, False, False]
    # two characters: half a body height apart is a space
    assert find_spaces([14], 20) == [True] and find_spaces([4], 20) == [False]


def test_a_field_value_needs_clearer_spaces_than_running_text() -> None:
    # a jump of 1.8 between letter gaps and the wider ones: two words in a line of text, but
    # in a field (one name, date or code) a writer's uneven spacing
    assert find_spaces([5, 6, 11, 5, 6], 20) == [False, False, True, False, False]
    assert find_spaces([5, 6, 11, 5, 6], 20, FIELD_SPACING) == [False] * 5
    # half the gaps wide ("ROB I N"): letters spaced unevenly, not three words, in a field
    assert find_spaces([4, 5, 14, 15], 20) == [False, False, True, True]
    assert find_spaces([4, 5, 14, 15], 20, FIELD_SPACING) == [False] * 4
    # a clear word gap is a space in both
    assert find_spaces([4, 5, 4, 20, 5], 20, FIELD_SPACING) == [False, False, False, True, False]


def test_segment_of_nothing_and_of_specks_only() -> None:
    assert segment(None).lines == []
    mask = np.zeros((200, 200), bool)
    mask[50, 50] = mask[120, 30] = True
    assert segment(mask).lines == []


def test_lexicon_uses_the_probabilities_not_only_the_top_answer() -> None:
    lex = Lexicon(["cat", "car", "cart", "dog"])
    # top-1 string "cal"; the third letter is more likely t than r
    word = [{"c": 0.9, "e": 0.1}, {"a": 0.8, "o": 0.2}, {"l": 0.5, "t": 0.3, "r": 0.2}]
    m = lex.match(word)
    assert m.word == "cat" and m.alignment == [(0, 0), (1, 1), (2, 2)]
    assert m.cost == pytest.approx(-np.log(0.9) - np.log(0.8) - np.log(0.3))
    # same-length entries win by joint probability even against a better top-1 match
    assert Lexicon(["dot", "cat"]).match([{"d": 0.4, "c": 0.35}, {"o": 0.4, "a": 0.6}, {"t": 1.0}]).word == "cat"
    # a missed character: the four-letter entry is aligned with one insertion
    m = lex.match([{"c": 0.9}, {"a": 0.9}, {"t": 0.6, "r": 0.4}])
    assert m.word == "cat"
    m = Lexicon(["cart"]).match([{"c": 0.9}, {"a": 0.9}, {"t": 0.9}])
    assert m.word == "cart" and sum(i is None for i, _ in m.alignment) == 1
    # case
    assert Lexicon(["Anna"], ignore_case=True).match([{"A": 0.6}, {"N": 0.7}, {"n": 0.9}, {"a": 0.9}]).word == "Anna"
    with pytest.raises(HcrError, match="empty"):
        Lexicon(["", "  "])


def test_lexicon_in_the_reader(chars: Predictor, tmp_path: Path) -> None:
    img = write(sheet(), "Anna", 80, 190)
    lex = tmp_path / "names.txt"
    lex.write_text("Anne\nAnna\nHanna\n")
    res = Reader(chars, lexicon=lex).read(img)
    assert res.text == "Anna"
    res = Reader(chars, lexicon=["Hanna", "Otto"]).read(img)
    assert res.text in ("Hanna", "Otto")  # only allowed words come out


def test_split_charset() -> None:
    assert split_charset(None) == (None, ".,-:")  # a slash only when asked for
    assert split_charset("0123456789/") == ("0123456789", "/")
    assert split_charset("0123456789:") == ("0123456789", ":")
    assert split_charset("digits") == ("digits", "")
    assert split_charset("0123456789.-") == ("0123456789", ".-")
    assert split_charset("ABC") == ("ABC", "")
    with pytest.raises(HcrError, match="only punctuation"):
        split_charset(".")


def test_result_to_dict_round_trips_through_json(reader: Reader) -> None:
    res = reader.read(write(sheet(), "7", 60, 200), name="seven.png")
    d = json.loads(json.dumps(res.to_dict()))
    assert d["file"] == "seven.png" and d["text"] == res.text and d["lines"][0]["text"] == res.text
    assert isinstance(ReadResult("", []).to_dict()["characters"], list)


# --------------------------------------------------------------------------- real handwriting


def test_lines_of_real_emnist_characters(real_data_dir: Path, reader: Reader) -> None:
    from hcr.data import get_source

    samples = get_source("emnist-byclass", real_data_dir).load("dev-val")
    symbols = samples.label_map.symbols
    rng = np.random.default_rng(0)
    pool: dict[str, np.ndarray] = {}
    for s in set("0123456789helloworldmarketgarden"):
        pool[s] = np.flatnonzero(samples.targets == symbols.index(s))
    texts = ["hello world", "market garden", "2024 0371", "order 58"]
    errors = total = 0
    for text in texts:
        cells = []
        for ch in text:
            if ch == " ":
                cells.append(np.zeros((28, 12), np.uint8))
                continue
            g = samples.images[int(rng.choice(pool[ch]))]
            cols = np.flatnonzero((g > 85).sum(axis=0) >= 2)
            cells += [g[:, cols[0] : cols[-1] + 1], np.zeros((28, 3), np.uint8)]
        line = np.pad(np.concatenate(cells, axis=1), ((6, 6), (8, 8)))
        img = 255 - cv2.resize(line, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # dark on light
        got = reader.read(img).text
        errors += round(cer(text.lower(), got.lower()) * len(text))
        total += len(text)
        assert len(got.split()) == len(text.split()), (text, got)  # the words are found
    assert errors / total <= 0.15


def _field_punctuation_line(text: str, height: int = 60) -> np.ndarray:
    """``text``: digits of samples/ in real handwriting, with pen-drawn ``/`` (a straight
    stroke leaning about 24 degrees), ``:`` (two dots), ``.`` (a dot on the baseline), ``+`` (a slightly tilted cross,
    0.6 heights) and ``(`` ``)`` (arcs 1.2 heights tall, reaching above and below the
    digits), a third of a height apart; a space adds half a height."""
    from conftest import handwritten

    digits = iter(handwritten("".join(c for c in text if c.isdigit()), height))
    pieces, x = [], height // 2
    for ch in text:
        if ch == " ":
            x += height // 2
            continue
        if ch == "/":
            g = np.full((height, 37), 245, np.uint8)
            cv2.line(g, (31, 2), (5, height - 3), 20, 5, cv2.LINE_AA)
        elif ch == ":":
            g = np.full((height, 15), 245, np.uint8)
            cv2.circle(g, (7, int(0.4 * height)), 5, 20, -1)
            cv2.circle(g, (7, int(0.9 * height)), 5, 20, -1)
        elif ch == ".":
            g = np.full((height, 15), 245, np.uint8)
            cv2.circle(g, (7, int(0.9 * height)), 6, 20, -1)
        elif ch == "+":
            s = int(0.6 * height)
            g = np.full((height, s + 6), 245, np.uint8)
            cv2.line(g, (3, height // 2 + 2), (s + 2, height // 2 - 1), 20, 5, cv2.LINE_AA)
            cv2.line(g, (s // 2 + 3, (height - s) // 2), (s // 2 + 2, (height + s) // 2), 20, 5, cv2.LINE_AA)
        elif ch in "()":
            g = np.full((int(1.2 * height), 24), 245, np.uint8)
            centre, arc = ((20, (110, 250)) if ch == "(" else (3, (-70, 70)))
            cv2.ellipse(g, (centre, g.shape[0] // 2), (14, g.shape[0] // 2 - 4), 0, arc[0], arc[1], 20, 5, cv2.LINE_AA)
        else:
            g = next(digits)
        pieces.append((g, x))
        x += g.shape[1] + height // 3
    img = np.full((2 * height, x + height // 2), 245, np.uint8)
    for g, gx in pieces:
        y0 = height // 2 - (g.shape[0] - height) // 2  # centred on the digits' band
        img[y0 : y0 + g.shape[0], gx : gx + g.shape[1]] = np.minimum(img[y0 : y0 + g.shape[0], gx : gx + g.shape[1]], g)
    return img


def test_dates_and_times_keep_their_slashes_and_colons() -> None:
    date, time_ = _field_punctuation_line("25/73/2937"), _field_punctuation_line("23:59")
    # asked for, the slash is read by its shape, not as a 1
    assert Reader.load(charset="0123456789/").read(date).text == "25/73/2937"
    assert Reader.load(charset="0123456789/:").read(time_).text == "23:59"
    # a colon is read by default; a slash is not (alone it looks like a slanted 1 or l)
    assert Reader.load().read(time_).text == "23:59"
    assert "/" not in Reader.load().read(date).text
    with pytest.raises(HcrError, match="only punctuation"):
        Reader.load(charset="/:")


def test_a_date_keeps_its_periods() -> None:
    assert Reader.load(charset="0123456789.").read(_field_punctuation_line("25.73.2937")).text == "25.73.2937"


def test_phone_numbers_keep_their_plus_and_parentheses() -> None:
    phone = _field_punctuation_line("+33 (7)5 92")
    # asked for, the cross and the parentheses are read by their shape, in a line and a field
    reader = Reader.load(charset="0123456789+() ")
    assert reader.read(phone).text == "+33 (7)5 92"
    assert reader.read_field(phone).text == "+33 (7)5 92"
    # each only where it is asked for: the others go to the classifier, as before
    assert Reader.load(charset="0123456789+").read(phone).text.startswith("+33 ")
    assert "+" not in Reader.load(charset="0123456789()").read(phone).text
    assert "(7)" in Reader.load(charset="0123456789()").read(phone).text
    for reader in (Reader.load(), Reader.load(charset="0123456789")):  # not asked for: no mark
        assert not set(reader.read(phone).text) & set("+()")
    # the European 7's crossbar is no cross, and one that is asked for does not turn digits into marks
    assert Reader.load(charset="0123456789+()").read(_field_punctuation_line("(7)+5")).text == "(7)+5"


def test_cross_and_parenthesis_shapes() -> None:
    """The shape rules on their own (:func:`hcr.segment.cross_of`, ``parenthesis_of``): the
    lookalikes a classifier would read are not marks."""
    from hcr.segment import Glyph, asked_mark_of, cross_of, parenthesis_of

    def glyph(draw: Any, h: int = 60, w: int = 40) -> Glyph:
        m = np.zeros((h, w), np.uint8)
        draw(m)
        ys, xs = np.nonzero(m)
        return Glyph(int(xs.min()), int(ys.min()), m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] > 0)

    top, bottom = 0.0, 60.0
    plus = glyph(lambda m: (cv2.line(m, (4, 30), (36, 29), 1, 5), cv2.line(m, (20, 14), (21, 46), 1, 5)))
    x = glyph(lambda m: (cv2.line(m, (4, 14), (36, 46), 1, 5), cv2.line(m, (36, 14), (4, 46), 1, 5)))
    t = glyph(lambda m: (cv2.line(m, (4, 14), (36, 14), 1, 5), cv2.line(m, (20, 2), (20, 56), 1, 5)))
    assert cross_of(plus, top, bottom) and not cross_of(x, top, bottom) and not cross_of(t, top, bottom)
    left = glyph(lambda m: cv2.ellipse(m, (30, 32), (16, 28), 0, 110, 250, 1, 5), h=66)
    right = glyph(lambda m: cv2.ellipse(m, (6, 32), (16, 28), 0, -70, 70, 1, 5), h=66)
    one = glyph(lambda m: cv2.line(m, (24, 2), (14, 58), 1, 5))  # a slanted stroke: a 1 or an l
    hook = glyph(lambda m: (cv2.line(m, (24, 2), (24, 44), 1, 5), cv2.ellipse(m, (14, 44), (10, 12), 0, 0, 140, 1, 5)))  # a J
    assert parenthesis_of(left, top, bottom) == "(" and parenthesis_of(right, top, bottom) == ")"
    assert parenthesis_of(one, top, bottom) is None and parenthesis_of(hook, top, bottom) is None
    assert asked_mark_of(left, top, bottom, ")") is None and asked_mark_of(plus, top, bottom, "()") is None


def _word(*probs: dict[str, float]) -> list:
    from hcr.reading.segmented import _Char

    return [_Char(Glyph(10 * i, 0, np.ones((20, 8), bool)), dict(p)) for i, p in enumerate(probs)]


def test_context_settles_kind_and_case_without_turning_a_letter_into_a_digit() -> None:
    from hcr.reading.segmented import _apply_context

    # an upper-case name whose i is read lower case: the case step may only pick another
    # letter for it (I), never the digit 1 that is left once the lower-case letters go
    word = _word({"R": 0.9, "P": 0.1}, {"0": 0.7, "O": 0.3}, {"B": 0.95, "8": 0.05}, {"i": 0.6, "l": 0.28, "1": 0.07, "I": 0.05}, {"N": 0.99, "n": 0.01})
    _apply_context(word, ignore_case=False)
    assert "".join(c.best[0] for c in word) == "ROBIN"
    digits = _word({"2": 0.95, "Z": 0.05}, {"O": 0.6, "0": 0.4}, {"2": 0.95, "z": 0.05}, {"4": 0.97, "A": 0.03})
    _apply_context(digits, ignore_case=False)
    assert "".join(c.best[0] for c in digits) == "2024"


def _broken_n_note(gap: int) -> np.ndarray:
    """Block capitals NOTE whose N has a gap of ``gap`` px in its diagonal (a faint stroke
    the scan lost): two parts, an I and a V-like piece."""
    img = np.full((140, 420), 250, np.uint8)

    def stroke(p: tuple[int, int], q: tuple[int, int]) -> None:
        cv2.line(img, p, q, 20, 7, cv2.LINE_AA)

    stroke((30, 110), (30, 30))
    stroke((80, 110), (80, 30))
    d = gap / 2
    stroke((30, 30), (int(55 - 0.53 * d), int(70 - 0.85 * d)))
    stroke((int(55 + 0.53 * d), int(70 + 0.85 * d)), (80, 110))
    cv2.ellipse(img, (145, 70), (25, 40), 0, 0, 360, 20, 7, cv2.LINE_AA)
    stroke((200, 30), (250, 30))
    stroke((225, 30), (225, 110))
    for a, b in (((290, 30), (290, 110)), ((290, 30), (335, 30)), ((290, 70), (325, 70)), ((290, 110), (335, 110))):
        stroke(a, b)
    return img


def test_a_character_broken_in_two_is_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = Reader.load("chars", printed=None)
    assert reader.read(_broken_n_note(0)).text == "NOTE"
    assert reader.read(_broken_n_note(16)).text == "NOTE"  # joined: the whole scores far better
    monkeypatch.setattr(Reader, "_join_broken", lambda self, chars, spaces, *a: (chars, spaces))
    assert reader.read(_broken_n_note(16)).text != "NOTE"  # what the pieces alone read
