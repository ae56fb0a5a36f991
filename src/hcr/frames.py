"""Ink that is not writing: card and page edges, cell and grid lines, form rules and boxes.

Both paths from pixels to characters call this module, so a frame is recognised the same
way wherever it appears:

- :func:`hcr.preprocess.find_ink` (one character, a word, a line or a page) drops
  :func:`border_clutter`: what lives along the image's own edges. A character photographed
  in a cell or on a card comes with pieces of the grid lines, the card's edge, the table
  beyond it or a shadow at the border of the crop; a form crop comes with the cut-off
  writing of the neighbouring rows. Their ink lies (almost) entirely in a band along the
  edges, which a character (in the middle of its picture) never does. A line or field
  crop, too short for that band, loses the box sides it cut across (:func:`_side_lines`).
- :func:`hcr.segment.segment` then removes :func:`remove_form_lines` (rules, box edges,
  underlines, comb ticks) between and around the characters it finds, judged against the
  character height it measured.

Everything works on boolean ink masks (ink ``True``); nothing here decodes images or knows
about models.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["EDGE_BAND", "MIN_FRAMED_SIDE", "border_clutter", "components", "remove_form_lines", "runs"]

#: Images shorter than this (pixels, either side) have no room for a frame around their
#: writing: data-set arrays (28 x 28) and tight crops are left exactly as they are.
MIN_FRAMED_SIDE = 48
#: The border band: this share of the image's shorter side along each edge ...
EDGE_BAND = 0.08
#: ... holding at least this share of a connected part's ink ...
EDGE_SHARE = 0.8
#: ... which spans at least this share of the shorter side, makes the part clutter.
EDGE_SPAN = 0.25
#: Straight runs in the border band at least this share of the edge's length are edge
#: lines even where writing touches them (a letter written over a cell's grid line).
EDGE_RUN = 0.5
#: A line along the left or right edge (see _side_lines) is at most this share of its
#: height wide, at least this share of the image tall, and this many of its heights away
#: from all other ink.
SIDE_THIN = 0.15
SIDE_TALL = 0.5
SIDE_APART = 2.0
#: ... and reaches to within this many pixels of the side (a scanner's margin).
SIDE_MARGIN = 3

# Sizes in character heights (H) for form lines; see remove_form_lines.
_RULE_H = 2.5  # a horizontal run this many H long is a form line
_RULE_V = 3.0  # a vertical run this many H long is a form line, wherever it is
_SIDE_V = 0.4  # shorter vertical runs are never taken for the side of a box
_DOT = 0.3  # a dot or dash of a dotted rule is at most this many H tall ...
_DOT_GAP = 0.8  # ... and at most this many H from the next


def components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected parts: the label image and their stats rows (x, y, w, h, area), label
    ``i + 1`` for row ``i``."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return labels, stats[1:, :5].astype(np.int64)


def runs(mask: np.ndarray, length: int, horizontal: bool) -> np.ndarray:
    """Pixels of ``mask`` on straight runs at least ``length`` long. The mask is first
    thickened by a pixel across the run direction, so slightly tilted lines (which a
    one-pixel run would step off) are found too."""
    m = mask.astype(np.uint8)
    across = np.ones((3, 1) if horizontal else (1, 3), np.uint8)
    thick = cv2.dilate(m, across)
    if int(thick.sum(axis=1 if horizontal else 0).max(initial=0)) < length:  # no row (column) holds such a run
        return np.zeros(mask.shape, bool)
    kernel = np.ones((1, length) if horizontal else (length, 1), np.uint8)
    opened = cv2.morphologyEx(thick, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (opened > 0) & mask


def _thickness(lines: np.ndarray, horizontal: bool) -> float:
    """Median thickness of the line parts in ``lines`` (area over length)."""
    _, st = components(lines)
    if len(st) == 0:
        return 1.0
    length = st[:, 2] if horizontal else st[:, 3]
    return float(np.median(st[:, 4] / np.maximum(length, 1)))


def _restore_crossings(rest: np.ndarray, lines: np.ndarray, thickness: float, horizontal: bool) -> np.ndarray:
    """Pixels of ``lines`` that a stroke of ``rest`` crossed: the gap the removed line
    leaves in a stroke is closed across the line's direction, inside the line only."""
    k = max(3, int(np.ceil(thickness)) + 3)
    kernel = np.ones((k, 1) if horizontal else (1, k), np.uint8)
    closed = cv2.morphologyEx(rest.astype(np.uint8), cv2.MORPH_CLOSE, kernel) > 0
    return closed & lines


def border_clutter(mask: np.ndarray) -> np.ndarray | None:
    """The ink of ``mask`` that lives along the image's edges (see the module docstring),
    or None when there is none or the image is smaller than :data:`MIN_FRAMED_SIDE`. An
    image shorter than that on one side only (a line or field crop) gets just its side
    lines (:func:`_side_lines`).

    Clutter is (1) every connected part with at least :data:`EDGE_SHARE` of its ink in
    the border band (:data:`EDGE_BAND` of the shorter side) that spans at least
    :data:`EDGE_SPAN` of that side: grid and cell lines, card and page edges, the table
    beyond them, cut-off writing of a neighbouring row; and (2) straight runs in the band
    at least :data:`EDGE_RUN` of the edge long, where writing touches such a line (the
    stroke pixels crossing it are kept)."""
    h, w = mask.shape
    side = min(h, w)
    if max(h, w) < MIN_FRAMED_SIDE or not mask.any():
        return None
    labels, st = components(mask)  # once, for both kinds
    parts = [_side_lines(mask, labels, st), _edge_parts(mask, labels, st) if side >= MIN_FRAMED_SIDE else None]
    found = [f for f in parts if f is not None]
    return np.logical_or.reduce(found) if found else None


def _side_lines(mask: np.ndarray, labels: np.ndarray, st: np.ndarray) -> np.ndarray | None:
    """Lines along the left and right edges that stand apart from everything else: where
    a line or field crop cuts across a table rule or a box side. A part (``labels`` and
    ``st``: :func:`components` of ``mask``) is one when it reaches to within
    :data:`SIDE_MARGIN` pixels of the side, is thin (at most :data:`SIDE_THIN` of its
    height, or 3 pixels), at least :data:`SIDE_TALL` of the image tall, and at least
    :data:`SIDE_APART` of its own height away from all other ink: the first or last letter
    of a tight crop (an ``l``, an ``I``) sits a letter's gap from its neighbour, not
    several heights."""
    h, w = mask.shape
    x, ww, hh = st[:, 0], st[:, 2], st[:, 3]
    at_side = (x <= SIDE_MARGIN) | (x + ww >= w - SIDE_MARGIN)
    lines = np.flatnonzero(at_side & (ww <= np.maximum(3, SIDE_THIN * hh)) & (hh >= SIDE_TALL * h))
    if len(lines) == 0:
        return None
    cand = np.isin(labels, lines + 1)
    cols = np.flatnonzero((mask & ~cand).any(axis=0))
    keep = []
    for i in lines:
        left, right = int(x[i]), int(x[i] + ww[i])
        before, after = cols[cols < left], cols[cols >= right]
        gap = min(left - int(before.max()) - 1 if len(before) else w, int(after.min()) - right if len(after) else w)
        if gap >= SIDE_APART * hh[i]:
            keep.append(i)
    return np.isin(labels, np.asarray(keep, np.int64) + 1) if keep else None


def _edge_parts(mask: np.ndarray, labels: np.ndarray, st: np.ndarray) -> np.ndarray | None:
    """Parts (1) and (2) of :func:`border_clutter` on an image at least
    :data:`MIN_FRAMED_SIDE` on both sides (``labels``, ``st``: its :func:`components`)."""
    h, w = mask.shape
    side = min(h, w)
    d = max(2, int(round(EDGE_BAND * side)))
    if not (mask[:d].any() or mask[-d:].any() or mask[:, :d].any() or mask[:, -d:].any()):
        return None  # nothing in the band
    rows = np.zeros((h, w), bool)
    rows[:d] = rows[-d:] = True
    cols = np.zeros((h, w), bool)
    cols[:, :d] = cols[:, -d:] = True
    in_band = np.bincount(labels[(rows | cols) & mask], minlength=len(st) + 1)[1:]
    span = np.maximum(st[:, 2], st[:, 3])
    edge = (in_band >= EDGE_SHARE * st[:, 4]) & (span >= EDGE_SPAN * side)
    clutter = np.isin(labels, np.flatnonzero(edge) + 1)
    rest = mask & ~clutter
    horiz = np.zeros_like(mask)
    vert = np.zeros_like(mask)
    e = d + 2  # the band and a little more: a run is looked for in the strips along the edges only
    for rs in (np.s_[:e], np.s_[h - e :]):
        horiz[rs] |= runs(rest[rs], max(8, int(round(EDGE_RUN * w))), True)
    for cs in (np.s_[:, :e], np.s_[:, w - e :]):
        vert[cs] |= runs(rest[cs], max(8, int(round(EDGE_RUN * h))), False)
    horiz &= rows
    vert &= cols
    for lines, horizontal in ((horiz, True), (vert, False)):
        if lines.any():
            lines &= ~_restore_crossings(rest & ~lines, lines, _thickness(lines, horizontal), horizontal)
            clutter |= lines
    return clutter if clutter.any() else None


def remove_form_lines(mask: np.ndarray, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Remove rules, box edges and underlines from a boolean ink mask whose characters are
    about ``height`` pixels tall. Returns ``(kept, removed)``.

    Straight horizontal runs longer than 2.5 character heights are removed, and where a
    handwritten stroke crossed one its pixels are put back; vertical runs are removed when
    longer than 3 character heights, or when they are about as thin as the removed
    horizontal lines and touch one (the sides of a box, the ticks of a comb field). Rows of
    small dots or dashes as long as a horizontal line are dotted rules: removed too."""
    horiz = runs(mask, max(8, int(round(_RULE_H * height))), True)
    rest = mask & ~horiz
    t = 1.0
    if horiz.any():
        t = _thickness(horiz, True)
        rest |= _restore_crossings(rest, horiz, t, True)
        horiz &= ~rest
    vert = runs(rest, max(8, int(round(_RULE_V * height))), False)
    sticks = runs(rest, max(4, int(round(_SIDE_V * height))), False) & ~vert
    if horiz.any() and sticks.any():
        near_line = cv2.dilate(horiz.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        labels, st = components(sticks)
        width = st[:, 4] / np.maximum(st[:, 3], 1)
        touching = np.zeros(len(st) + 1, bool)
        touching[np.unique(labels[near_line & sticks])] = True
        side = touching[1:] & (width <= 1.5 * t + 1.5)
        vert |= np.isin(labels, np.flatnonzero(side) + 1)
    removed = (horiz | vert | _dotted(mask & ~(horiz | vert), height)) & mask
    return mask & ~removed, removed


def _dotted(mask: np.ndarray, height: float) -> np.ndarray:
    """Dotted and dashed rules: small parts (under :data:`_DOT` character heights tall and
    twice that wide) that, joined across gaps of up to :data:`_DOT_GAP` heights, make a
    horizontal run as long as a form line."""
    labels, st = components(mask)
    small = (st[:, 3] <= _DOT * height) & (st[:, 2] <= 2 * _DOT * height)
    if small.sum() < 4:
        return np.zeros_like(mask)
    dots = np.isin(labels, np.flatnonzero(small) + 1)
    k = max(3, int(round(_DOT_GAP * height)))
    joined = cv2.morphologyEx(dots.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((1, k), np.uint8)) > 0
    rule = runs(joined, max(8, int(round(_RULE_H * height))), True)
    hit = np.unique(labels[rule & dots])
    return np.isin(labels, hit[hit > 0])
