"""CTC codec and numpy decoding: round trips, greedy and beam search on hand-made scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hcr.ctc import align, beam_search, decode, greedy_path, greedy_runs, log_softmax
from hcr.errors import DataError
from hcr.labels import BLANK, CTCCodec
from hcr.lexicon import Lexicon

CODEC = CTCCodec(tuple(" -abdehlo"))


def scores(path: list[int], p: float = 0.9, codec: CTCCodec = CODEC) -> np.ndarray:
    """Log-probabilities whose best class in column t is ``path[t]`` (probability ``p``)."""
    m = np.full((len(path), codec.num_classes), (1 - p) / (codec.num_classes - 1))
    m[np.arange(len(path)), path] = p
    return np.log(m)


def enc(text: str) -> list[int]:
    return CODEC.encode(text)


def test_blank_is_index_zero_and_symbols_follow() -> None:
    assert BLANK == 0
    assert CODEC.num_classes == len(CODEC.alphabet) + 1
    assert CODEC.symbol(0) == ""
    assert [CODEC.symbol(i) for i in enc("hello")] == list("hello")
    assert enc("a") == [CODEC.alphabet.index("a") + 1]


@pytest.mark.parametrize("text", ["hello", "a", "", "bell-ball", "ll", "lll", "hello hello"])
def test_round_trip_through_a_path_with_blanks(text: str) -> None:
    # the minimal path: a blank between equal neighbours, repeats of each label in between
    path: list[int] = [BLANK]
    for k in enc(text):
        if path and path[-1] == k:
            path.append(BLANK)
        path += [k, k]
    path.append(BLANK)
    assert CODEC.decode(path) == text
    assert decode(scores(path), CODEC).text == text


def test_repeated_letters_need_a_blank_between_them() -> None:
    l = enc("l")[0]
    assert CODEC.decode([l, l, l]) == "l"  # one run: one letter
    assert CODEC.decode([l, BLANK, l]) == "ll"
    h, e, o = enc("heo")
    assert decode(scores([h, e, l, l, o]), CODEC).text == "helo"
    assert decode(scores([h, e, l, BLANK, l, o]), CODEC).text == "hello"


def test_codec_errors_and_serialisation() -> None:
    with pytest.raises(DataError, match="not in the model's alphabet"):
        CODEC.encode("hellx")
    with pytest.raises(DataError, match="duplicate"):
        CTCCodec(("a", "a"))
    with pytest.raises(DataError, match="single characters"):
        CTCCodec(("ab",))
    assert CTCCodec.from_dict(CODEC.to_dict()) == CODEC
    assert CODEC.to_dict()["blank"] == 0
    with pytest.raises(DataError, match="blank"):
        CTCCodec.from_dict({"alphabet": "ab", "blank": 2})
    assert CTCCodec.from_texts(["ba", "ab "], extra="z").alphabet == (" ", "a", "b", "z")


def test_greedy_confidences_and_word_spans() -> None:
    h, e, l, o, sp, b, d = enc("helo bd")
    lp = scores([h, e, l, BLANK, l, o, sp, b, e, d])
    lp[2] = np.log(np.full(CODEC.num_classes, 0.04))  # column 2: "l" at 0.6, the rest shared
    lp[2, l] = np.log(0.6)
    lp[2] = log_softmax(lp[2])
    out = decode(lp, CODEC)
    assert out.text == "hello bed"
    assert [w.text for w in out.words] == ["hello", "bed"]
    first, second = out.words
    assert first.confidence == pytest.approx(math.exp(lp[2, l]), rel=1e-6)  # the least sure letter
    assert second.confidence == pytest.approx(0.9, rel=1e-6)
    assert first.columns == (0, 5) and second.columns == (7, 9)
    assert out.confidence == first.confidence
    assert [c.columns for c in out.chars[:5]] == [(0, 0), (1, 1), (2, 2), (4, 4), (5, 5)]


def test_beam_search_sums_paths_where_greedy_does_not() -> None:
    # Greedy picks the best single path (blank, blank); beam search sums the three paths of
    # "a" (a_, _a, aa: 0.3*0.6 + 0.6*0.3 + 0.3*0.3 = 0.45) over the blank path's 0.36.
    codec = CTCCodec(("a",))
    lp = np.log(np.array([[0.6, 0.3], [0.6, 0.3]]) / 0.9)
    assert decode(lp, codec).text == ""
    hyps = beam_search(lp, codec, beam_width=4)
    assert codec.decode(hyps[0][0]) == "a"
    assert hyps[0][1] == pytest.approx(math.log((2 / 3) * (1 / 3) * 2 + (1 / 3) ** 2), rel=1e-9)
    assert decode(lp, codec, beam_width=4).text == "a"


def test_lexicon_keeps_beam_search_to_entries() -> None:
    h, e, l, o, b, a = enc("heloba")
    lp = scores([h, e, l, l, l, o])  # greedy reads "helo": one run of l
    assert decode(lp, CODEC).text == "helo"
    lex = Lexicon(["bell", "hello", "ball"])
    got = decode(lp, CODEC, lexicon=lex)
    assert got.text in lex.words and got.in_lexicon is True
    assert got.text == "hello"
    # a line: every word must be an entry, separated by single spaces
    sp = enc(" ")[0]
    lp2 = scores([h, e, l, BLANK, l, o, sp, b, e, l, BLANK, l])
    assert decode(lp2, CODEC, lexicon=Lexicon(["hello", "bell", "ball"])).text == "hello bell"
    # case-insensitive lexicon entries match either case of the alphabet
    codec = CTCCodec(tuple("HELOhelo"))
    H, E, L, O = codec.encode("HELO")
    lp3 = scores([H, E, L, BLANK, L, O], codec=codec)
    assert decode(lp3, codec, lexicon=Lexicon(["hello"], ignore_case=True)).text == "HELLO"


def test_lexicon_without_a_fitting_entry_falls_back() -> None:
    h, e = enc("he")
    lp = scores([h, e])
    got = decode(lp, CODEC, lexicon=Lexicon(["hello"]))  # "hello" cannot fit in 2 columns
    assert got.text == "he" and got.in_lexicon is False
    with pytest.raises(ValueError, match="alphabet"):
        decode(lp, CODEC, lexicon=Lexicon(["xyz"]))


def test_align_finds_the_best_path_and_rejects_impossible_texts() -> None:
    l = enc("l")[0]
    lp = scores([l, BLANK, l])
    spans, score = align(lp, [l, l])
    assert spans == [(0, 0), (2, 2)]
    assert score == pytest.approx(3 * math.log(0.9))
    _, impossible = align(scores([l, l]), [l, l])  # needs a blank between: 3 columns
    assert impossible == -math.inf


def test_greedy_runs_are_the_viterbi_alignment_of_the_greedy_text() -> None:
    rng = np.random.default_rng(0)
    for trial in range(200):
        t = int(rng.integers(1, 30))
        logits = rng.normal(0, 3, (t, CODEC.num_classes))
        logits[:, BLANK] += rng.uniform(0, 4)  # from mostly blank to mostly symbols
        lp = log_softmax(logits)
        labels, spans = greedy_runs(greedy_path(lp))
        assert (spans, True) == (align(lp, labels)[0], True), trial
        got = decode(lp, CODEC)
        assert [c.columns for c in got.chars] == spans
        assert got.score == pytest.approx(align(lp, labels)[1])


def test_decode_checks_the_score_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        decode(np.zeros((5, 3)), CODEC)
