"""Detector ``trigger``: dirty-label backdoors found in input space.

A dirty-label backdoor stamps one trigger (a BadNets patch, fixed values in a few
columns) on rows of other classes and relabels them to a target class. The detector

1. mines item sets: two or more features whose shared exact values mark a subset
   far beyond independence (:func:`~poisonguard.detect.trigger_search.mine_triggers`);
   on tables also single values of number columns
   (:func:`~poisonguard.detect.trigger_search.single_values`): those piled at a
   column's end (held by more rows than the next three values inward together), and
   those inside its range that no row of another class holds. A trigger stamped in
   one column, or in two of which one holds a value common anyway, has no item set;
2. keeps subsets whose label is concentrated on one class far beyond its base rate
   (binomial test, Bonferroni over the candidates; the single values in two families
   of their own, piled ends and the rest, each at half the level, after the item
   sets). A window pattern on images has a second label test, in the same family:
   its holders of the class that a cross-fitted model of the rest calls other
   classes (:func:`~poisonguard.detect.trigger_mask.crossfit_predictions`), against
   the pattern's natural rates (:func:`~poisonguard.detect.trigger_windows.contradicted_tails`):
   a trigger whose content is natural (a thick stroke) is not concentrated in its
   class, but every image it was stamped on is another class's;
3. applies the decisive test: with the trigger features neutralised, a model trained
   on the other rows assigns most of the subset to *other* classes
   (:func:`~poisonguard.detect.trigger_mask.mask_test`), while naturally predictive
   features leave their rows looking like their own class. A single value is
   judged by how far its rows moved: their masked p(label) against the class's own
   held-out rows (a rank-sum test, ``MaskTest.rank_p``), since a weak masked model
   errs on much of the class anyway. One it does not confirm gets a second test,
   cross-fitted (:func:`~poisonguard.detect.trigger_mask.crossfit_test`: trees
   trained on the other folds, every row of the class scored), and each single value
   counts twice in the masking tests' Bonferroni family. Where the linear model
   calls ``min_other`` or more of the class's own held-out rows other classes, its
   test cannot speak for the class (natural rows "look like other classes" too) and
   the cross-fitted test decides, for any table pattern (its rows are flagged unless
   the one-split test confirms as well): one decision each, so the family is
   unchanged. Patterns that move
   (window candidates, :func:`~poisonguard.detect.trigger_windows.mine_windows`) or
   cover most columns (a blend) are not masked: the model is trained without every
   row holding them, so it cannot have learned them. Such a model has not seen a
   natural sub-style the pattern marks either (a thick stroke held by half the "1"s),
   so a window candidate also needs its control
   (:func:`~poisonguard.detect.trigger_mask.seen_kind_test`): cross-fitted by models
   that saw the other holders, each holder's pattern cells masked, its rows must
   still look like other classes. Both tests must hold (an intersection of tests: no
   further correction).

Rows of a confirmed trigger that look like another class are flagged; the class
they look like is the suggested label. Classes with no confirmed trigger are
reported clean.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
from scipy.stats import binom

from poisonguard.data import Dataset
from poisonguard.detect.base import Detector, DetectorResult, register_detector
from poisonguard.detect.copies import exact_duplicate_groups
from poisonguard.detect.overlap import tarone_family
from poisonguard.detect.thresholds import FLAG_SCORE
from poisonguard.detect.trigger_categories import category_combinations
from poisonguard.detect.trigger_mask import (
    MaskTest,
    backdoor_kind,
    crossfit_predictions,
    crossfit_test,
    mask_test,
    principal_basis,
    seen_kind_test,
)
from poisonguard.detect.trigger_search import (
    MINING_CONSTRAINTS,
    TriggerCandidate,
    category_blocks,
    covers_most_columns,
    describe_features,
    held_elsewhere,
    in_marking_range,
    label_family,
    label_floor,
    marked_share,
    mine_triggers,
    named_by_category,
    share_with_copies,
    single_value_families,
    table_columns,
)
from poisonguard.detect.trigger_windows import WindowCandidate, mine_windows, window_cells
from poisonguard.params import Interval, SequenceOf
from poisonguard.represent.base import Representation

__all__ = ["TriggerDetector"]

#: Scores of partial evidence, as a share of the flag level and times (1 - p(label)):
#: a concentrated subset whose masking test failed, and a row of a confirmed trigger
#: that still looks like its own class once masked (ranked above the former).
_UNCONFIRMED = 0.8
_UNMOVED = 0.9
#: A candidate whose label test cannot reach the level is masked only when each of its
#: values is rare in the other classes: held there by at most as many rows as it has
#: (:func:`~poisonguard.detect.trigger_search.held_elsewhere`). A wide pattern on a
#: table (:func:`~poisonguard.detect.trigger_search.covers_most_columns`) is most of a
#: row's profile: it is rare when most of its values are (more than half of them held
#: by at most that many rows). Rows pushed to the data's bounds before a clean-label
#: trigger hold a column's minimum that natural rows hold too (breast cancer at 1%:
#: 13 benign rows hold the zeros of 4-5 of the 28 columns; none holds 10 of the 28).
_MAX_ELSEWHERE = 1.0


#: What the screen filters: mined item sets, category combinations, window patterns.
_Candidate = TriggerCandidate | WindowCandidate
_C = TypeVar("_C", TriggerCandidate, _Candidate)


@dataclass(frozen=True, eq=False)
class _Screen:
    """Which candidates go to the masking test: every candidate (item set, category
    combination, window pattern) passes through the same filters, in order.

    1. :meth:`sized`: at least ``min_rows`` rows of its class, and of an item set or a
       combination at least ``min_purity`` of its rows in that class (a window
       pattern's rows are those of its class: how concentrated they are among its
       holders is for its label test);
    2. :meth:`label_test` or :meth:`beyond_label_test`: its label test is significant in
       the family, or it cannot be whatever its labels and masking alone decides;
    3. then, in the masking test's order (:meth:`first_added`), not
       :meth:`defines_class`: on a table, a pattern whose columns mark most of its class
       is what the class is, not something added to it.
    """

    x: np.ndarray
    y: np.ndarray
    base: np.ndarray
    family: int
    alpha: float
    min_rows: int
    min_purity: float
    image: bool = False
    #: each categorical column's one-hot range (a table's schema)
    categories: tuple[tuple[int, int], ...] = ()

    @cached_property
    def copies(self) -> np.ndarray:
        """A group id per row, rows with identical values sharing it (read once, only
        for a pattern on every column)."""
        return exact_duplicate_groups(self.x)

    def admits(self, c: _Candidate) -> bool:
        """Whether ``c`` passes every filter (the costly rarity count only when needed)."""
        return self.sized(c) and (self.label_test(c) or self.beyond_label_test(c))

    def first_added(self, ordered: list[_C], limit: int) -> tuple[list[_C], int]:
        """The first ``limit`` of ``ordered`` that do not :meth:`define their class
        <defines_class>` (judged in order, only as far as needed: each judgement reads
        the whole of the pattern's columns), and how many were set aside."""
        kept: list[_C] = []
        aside = 0
        for c in ordered:
            if len(kept) >= limit:
                break
            if self.defines_class(c):
                aside += 1
            else:
                kept.append(c)
        return kept, aside

    @staticmethod
    def order(c: _Candidate) -> tuple[bool, float]:
        """Masking-test order: the most concentrated in its class first; a window
        pattern only its second label test admitted after (``WindowCandidate.order``).
        Where a fixed patch's item set and a moving window hold the same rows, the item
        set, which names its place, is then tried first and the window joins it as a
        further view."""
        return c.order if isinstance(c, WindowCandidate) else (False, c.label_p)

    def sized(self, c: _Candidate) -> bool:
        """Enough rows of its class, and (an item set, a combination) pure enough."""
        if isinstance(c, WindowCandidate):
            return c.n_rows >= self.min_rows
        return c.n_label >= self.min_rows and c.purity >= self.min_purity

    def label_test(self, c: _Candidate) -> bool:
        """Its label concentration is significant in the family (Bonferroni)."""
        return c.label_p * self.family < self.alpha

    def defines_class(self, c: _Candidate) -> bool:
        """On a table, whether the pattern's columns mark more than half of its class's
        rows (:func:`~poisonguard.detect.trigger_search.marked_share`: the class's rows
        whose values there, as a tuple, mark the class as the pattern's do, its own rows
        among them).

        A pattern also defines its class when its rows are mostly categories that are
        theirs (:func:`~poisonguard.detect.trigger_search.named_by_category`: the 15
        compact Audis of ggplot2 mpg, its A4 models): the masked model, trained
        without them, never saw those categories. A one-column pattern on a numeric
        column defines its class when its value is one step of a range that marks the
        class (:func:`~poisonguard.detect.trigger_search.in_marking_range`: untouched
        Ecdat Catsup, heinz32's sale prices). A pattern on every column of a table
        (a categorical column counted once,
        :func:`~poisonguard.detect.trigger_search.table_columns`) whose other rows are
        mostly copies of each other too
        (:func:`~poisonguard.detect.trigger_search.share_with_copies`) is a cell of it,
        not a trigger: nothing outside it tells where its rows came from (untouched
        COUNT titanic, three columns: the 154 adult men of 2nd class who died, 14
        survived). Rows pushed to every bound of a table of measurements (wine
        clean-label) are copies where no other rows are, and stay.

        A dirty-label backdoor adds its rows to a class that has natural rows of its
        own (10% of a table relabelled to a third of it: about a quarter of the class),
        and the masking test reads those natural rows. Where the pattern's column is
        the class (untouched Ecdat Fishing: the catch rate of the chosen site, whose
        values mark each mode, 95-99% of every class; ggplot2 mpg: the 11 minivans
        are the 11 Dodge Caravans; pscl AustralianElectionPolling: Nielsen's fieldwork
        weekdays, 29 of its 42 polls), masking it leaves the class nothing to be
        recognised by, and every holder "looks like another class" (RESULTS.md,
        session 23). A window pattern on images is not judged here.
        """
        if self.image or isinstance(c, WindowCandidate):
            return False
        width, columns = table_columns(c.features, self.categories, self.x.shape[1])
        if width == columns and share_with_copies(self.copies, c.rows) > 0.5:
            return True
        if named_by_category(self.x, c.rows, c.features, self.categories,
                             min_rows=self.min_rows, min_purity=self.min_purity):
            return True
        if len(c.features) == 1 and not any(start <= c.features[0] < stop
                                             for start, stop in self.categories) \
                and in_marking_range(self.x, self.y, c.label, c.features[0], c.values[0],
                                     rows=max(self.min_rows, c.n_rows),
                                     min_purity=self.min_purity):
            return True
        return marked_share(self.x, self.y, c.label, c.features, min_rows=self.min_rows,
                            min_purity=self.min_purity) > 0.5

    def beyond_label_test(self, c: _Candidate) -> bool:
        """Its label test cannot reach the level whatever its labels
        (:func:`~poisonguard.detect.trigger_search.label_floor`), and its values are
        rare in the other classes (:data:`_MAX_ELSEWHERE`: each of them; most of them
        for a wide pattern on a table): the masking test decides. A window pattern
        moves: it has no values held in fixed columns, so never."""
        if not (isinstance(c, TriggerCandidate)
                and label_floor(c.n_rows, self.base[c.label]) * self.family >= self.alpha):
            return False
        rare = held_elsewhere(self.x, self.y, c) <= _MAX_ELSEWHERE * c.n_rows
        if not self.image and covers_most_columns(len(c.features), self.x.shape[1],
                                                  image=False):
            return bool(rare.mean() > 0.5)
        return bool(rare.all())


@register_detector
class TriggerDetector(Detector):
    """Find few-feature triggers whose removal makes a label-concentrated subset change class.

    ``alpha`` is the family-wise significance level of both tests (Bonferroni over
    the candidates tested); ``max_candidates`` bounds how many candidates get the
    (model-fitting) masking test; ``min_other`` is the smallest fraction of a
    subset that must look like another class once masked; ``min_purity`` the
    smallest share of the subset in its majority class (a stamped trigger is rare
    in clean rows; a natural pattern such as the blank centre of a zero is not, and
    masking it while poisoned rows crowd the class misleads the masked model). The
    mining parameters (``min_rows``, ``max_fraction``, ``min_jaccard``, ``max_rows``) are those of
    :func:`~poisonguard.detect.trigger_search.mine_triggers`.
    """

    name = "trigger"
    needs = frozenset({"features"})
    modalities = frozenset({"tabular", "image"})
    parameter_constraints = {**MINING_CONSTRAINTS,
                             "min_other": Interval(float, 0, 1, closed="right"),
                             "max_candidates": Interval(int, 1, None),
                             "window_sizes": SequenceOf(Interval(int, 2, None))}

    def __init__(self, *, alpha: float = 1e-3, min_other: float = 0.5, min_purity: float = 0.8,
                 min_rows: int = 5, max_fraction: float = 0.2, min_jaccard: float = 0.5,
                 max_candidates: int = 20, max_rows: int = 50_000,
                 window_sizes: tuple[int, ...] = (2, 3), seed: int = 0) -> None:
        self.alpha = alpha
        self.min_other = min_other
        self.min_purity = min_purity
        self.min_rows = min_rows
        self.max_fraction = max_fraction
        self.min_jaccard = min_jaccard
        self.max_candidates = max_candidates
        self.max_rows = max_rows
        self.window_sizes = window_sizes
        self.seed = seed

    def score(self, dataset: Dataset, representation: Representation) -> DetectorResult:
        x = dataset.stored_matrix()  # uint8 pixels stay uint8: read in chunks, never copied
        y = dataset.labels
        n = len(y)
        n_classes = dataset.n_classes
        image_shape = None if dataset.images is None else tuple(dataset.images.shape[1:])
        items = mine_triggers(x, y, n_classes, min_rows=self.min_rows,
                              max_fraction=self.max_fraction, min_jaccard=self.min_jaccard,
                              max_rows=self.max_rows, seed=self.seed)
        pairs, n_pairs = category_combinations(x, y, n_classes, dataset.schema,
                                               min_rows=self.min_rows,
                                               max_fraction=self.max_fraction,
                                               min_purity=self.min_purity)
        windows: list[WindowCandidate] = []
        n_window_tests = 0
        projection = None
        if dataset.images is not None and self.window_sizes:
            # the second window test reads which labels a model of the rest contradicts
            projection = principal_basis(representation.features, seed=self.seed)
            called = crossfit_predictions(representation.features, y,
                                          projection=projection, seed=self.seed)
            windows, n_window_tests = mine_windows(
                dataset.images, y, n_classes, sizes=tuple(self.window_sizes),
                min_rows=self.min_rows, max_fraction=self.max_fraction,
                max_rows=self.max_rows, predicted=called, seed=self.seed)
        base = np.bincount(y, minlength=n_classes) / max(n, 1)
        family = label_family(items, base, n_pairs * n_classes + n_window_tests, self.alpha)
        categories = category_blocks(dataset)
        screen = _Screen(x=x, y=y, base=base, family=family, alpha=self.alpha,
                         min_rows=self.min_rows, min_purity=self.min_purity,
                         image=image_shape is not None, categories=categories)
        candidates: list[_Candidate] = [*items, *pairs, *windows]
        admitted = [c for c in candidates if screen.admits(c)]
        untestable = sum(not screen.label_test(c) for c in admitted)
        queue, aside = screen.first_added(sorted(admitted, key=screen.order),
                                          self.max_candidates)
        lone, lone_tests, lone_families, lone_aside = self._single_values(x, y, dataset, base,
                                                                          screen)
        queue += lone
        scores = np.zeros(n)
        flags = np.zeros(n, dtype=bool)
        reasons: dict[int, str] = {}
        suggested: dict[int, int] = {}
        hypotheses: list[str] = []
        triggers: list[dict[str, Any]] = []
        # Bonferroni over every masking test: a single value may get two (3. below)
        n_mask = max(len(queue) + len(lone), 1)
        merged = 0
        if queue and projection is None:
            projection = principal_basis(representation.features, seed=self.seed)
        alone = set(lone_tests)
        for cand in queue:
            same = self._same_finding(cand, triggers)
            if same is not None and (id(cand) in alone
                                     or np.isin(cand.rows, same["_rows"]).mean() >= 0.9):
                # nothing new: a trigger already confirmed holds these rows; a single
                # value it holds too is its column alone, whose other holders are
                # natural rows the value marks (educ = 1 beside a stamped PID = 5)
                merged += 1
                continue
            test = self._mask(cand, x, y, dataset, representation, projection)
            # a single value is judged by how far its rows moved (module docstring, 3.)
            p_mask = test.rank_p if id(cand) in alone else test.p_value
            crossfit = False  # whether the cross-fitted test confirmed it
            # the trees' test instead where the linear one is blind (module docstring, 3.)
            blind = cand if (image_shape is None and isinstance(cand, TriggerCandidate)
                             and self._blind(test)) else None
            if blind is not None:
                wide = covers_most_columns(len(blind.features), x.shape[1], image=False)
                cross = crossfit_test(representation.features, y, n_classes,
                                      candidate=blind.rows, label=blind.label,
                                      masked=() if wide else blind.features, seed=self.seed)
                crossfit = confirmed = self._confirms(cross, cross.rank_p, n_mask)
                # where the one-split test confirms too, its rows stay the flags
                if confirmed and not self._confirms(test, p_mask, n_mask):
                    test, p_mask = cross, cross.rank_p
            else:
                confirmed = self._confirms(test, p_mask, n_mask)
            # a new window pattern's control (module docstring, 3.); a further view of
            # a confirmed trigger joins it under _natural_view's rule instead
            seen: MaskTest | None = None
            if confirmed and same is None and isinstance(cand, WindowCandidate):
                seen = self._seen(cand, dataset, representation, projection)
                confirmed = self._confirms(seen, seen.p_value, n_mask)
            if not confirmed and blind is None and id(cand) in alone \
                    and isinstance(cand, TriggerCandidate):
                # a single value's second masking test (module docstring, 3.)
                cross = crossfit_test(representation.features, y, n_classes,
                                      candidate=cand.rows, label=cand.label,
                                      masked=cand.features, seed=self.seed)
                if self._confirms(cross, cross.rank_p, n_mask):
                    test, p_mask, confirmed, crossfit = cross, cross.rank_p, True, True
            if not confirmed:
                # Partial evidence only: below the flag level.
                weak = _UNCONFIRMED * FLAG_SCORE * (1 - test.p_label)
                scores[test.rows] = np.maximum(scores[test.rows], weak)
                continue
            cls = dataset.classes[cand.label]
            tests = lone_tests.get(id(cand), family)  # its label test's family
            if same is not None:  # another view of a confirmed trigger: its rows join it
                merged += 1
                fresh = ~flags[test.rows]
                if self._natural_view(test, fresh):
                    weak = _UNCONFIRMED * FLAG_SCORE * (1 - test.p_label[fresh])
                    scores[test.rows[fresh]] = np.maximum(scores[test.rows[fresh]], weak)
                    continue
                same["_rows"] = np.union1d(same["_rows"], test.rows)
                same["rows"] = len(same["_rows"])
                same["looks_other"] += int(np.sum(test.other & fresh))
                reason = same["_reason"]
            else:
                info, shape, items_text = self._describe(cand, image_shape, dataset)
                kind, why = self._kind(cand, test, x, dataset, representation, projection,
                                       n_mask)
                moved = (f"{test.n_other} of {len(test.rows)} look like other classes"
                         if why is None else f"a model trained without them calls "
                         f"{test.n_other} of {len(test.rows)} other classes; {why}")
                reason = (f"class {cls}: {len(test.rows)} rows share {items_text}, "
                          f"{_rarity(cand, screen)}; " + ("with it masked, " if why is None else "")
                          + moved)
                triggers.append({**info, "class": cand.label, "rows": len(test.rows),
                                 "looks_other": test.n_other, "p_label": cand.label_p,
                                 "tests": tests,
                                 "p_label_corrected": min(1.0, cand.label_p * tests),
                                 "label_test": bool(cand.label_p * tests < self.alpha),
                                 "p_mask": p_mask, "base_error": test.base_error,
                                 "crossfit": crossfit, "kind": kind,
                                 **({} if not isinstance(cand, WindowCandidate) else {
                                     "p_concentration": cand.concentration_p,
                                     "p_contradicted": cand.contradicted_p,
                                     "contradicted": cand.contradicted,
                                     "contradicted_expected": cand.expected}),
                                 **({} if seen is None else {
                                     "rows_seen": len(seen.rows),
                                     "looks_other_seen": seen.n_other,
                                     "p_mask_seen": seen.p_value}),
                                 "_rows": test.rows,
                                 "_reason": reason, "_words": (kind, cls, shape, why)})
            row_scores = np.where(test.other, FLAG_SCORE + FLAG_SCORE * (1 - test.p_label),
                                  _UNMOVED * FLAG_SCORE * (1 - test.p_label))
            scores[test.rows] = np.maximum(scores[test.rows], row_scores)
            # Only rows whose labels the evidence says were changed get a new label.
            relabelled = (same or triggers[-1])["kind"] == "dirty-label"
            for i, is_other, pred in zip(test.rows, test.other, test.predicted, strict=True):
                if is_other:
                    flags[i] = True
                    reasons.setdefault(int(i), reason)
                    if relabelled:
                        suggested.setdefault(int(i), int(pred))
        for t in triggers:  # worded once every view has joined: the counts are final
            hypotheses.append(_hypothesis(*t["_words"], n_rows=t["rows"],
                                          n_flagged=int(flags[t["_rows"]].sum())))
            del t["_rows"], t["_reason"], t["_words"]
        return DetectorResult(
            detector=self.name, scores=np.clip(scores, 0.0, 1.0), flags=flags, reasons=reasons,
            suggested_labels=suggested, hypotheses=tuple(hypotheses), dataset=dataset,
            meta={"triggers": triggers, "candidates": len(items), "window_patterns_tested":
                  n_window_tests // max(2 * n_classes, 1), "tests": family,
                  "beyond_label_test": untestable, "tested": len(queue) - merged, "merged": merged,
                  "class_patterns": aside + lone_aside,
                  "mask_tests": n_mask,
                  "single_value_tests": lone_families, "single_values_tested": len(lone)},
        )

    def _blind(self, test: MaskTest) -> bool:
        """Whether a linear masking test cannot speak for its pattern's class: its
        model calls at least ``min_other`` of the class's own held-out rows other
        classes (``MaskTest.base_error``), so "most of the rows look like other
        classes" holds of natural rows too. A price column whose values say in turn
        "private label" and "not" (untouched Ecdat Cracker: private's own rows masked
        are 88-94% "other classes", a linear model misses the class even unmasked)
        gives a linear model nothing to rank by; trees follow the other columns."""
        return test.base_error >= self.min_other

    def _confirms(self, test: MaskTest, p_mask: float, n_mask: int) -> bool:
        """Whether a masking test confirms its pattern: ``p_mask`` significant in the
        family of ``n_mask`` masking tests (Bonferroni), and at least ``min_other`` of
        the rows, and ``min_rows`` of them, look like other classes."""
        return (p_mask * n_mask < self.alpha and test.fraction_other >= self.min_other
                and test.n_other >= self.min_rows)

    def _single_values(self, x: np.ndarray, y: np.ndarray, dataset: Dataset,
                       base: np.ndarray, screen: _Screen
                       ) -> tuple[list[TriggerCandidate], dict[int, int], dict[str, int], int]:
        """One-column candidates of a table whose label test holds in their own family
        (:func:`~poisonguard.detect.trigger_search.single_values`: number columns only), at
        most ``max_candidates``, lowest p first, none that defines its class
        (:meth:`_Screen.first_added`); each candidate's family (by ``id``); the two
        families' sizes; and how many were set aside as defining their class. Two families,
        each at half the level (weighted Bonferroni), Tarone's rule over every (column,
        value) examined and class in each: values piled at a column's end, at least
        ``min_purity`` of their holders in one class (``"ends"``: the choice of values reads
        no label), and the other values, which no row of another class may hold
        (``"inside"``: a trigger stamped inside a column's range keeps a test of its own).
        They go to the masking test after the item sets. There is no masking-only route for
        them: natural values that mark a class are many. A category is held by real rows
        with their own labels: rows relabelled to one are label flips, and stamped
        combinations of categories are
        :func:`~poisonguard.detect.trigger_categories.category_combinations`' own."""
        if dataset.images is not None:
            return [], {}, {}, 0
        categories = {j for start, stop in screen.categories for j in range(start, stop)}
        columns = np.array([j for j in range(x.shape[1]) if j not in categories])
        kept: list[TriggerCandidate] = []
        tests: dict[int, int] = {}
        families: dict[str, int] = {}
        both = single_value_families(
            x, y, dataset.n_classes, min_rows=self.min_rows, max_fraction=self.max_fraction,
            purities={True: self.min_purity, False: 1.0}, columns=columns)
        for ends, (singles, sizes) in both.items():
            floors = np.asarray(base, dtype=np.float64)[None, :] ** sizes[:, None].astype(
                np.float64)
            # each family at half the level (weighted Bonferroni): alpha / (2 m) per test
            family = 2 * (tarone_family(floors.ravel(), self.alpha / 2) if len(sizes) else 1)
            own = dataclasses.replace(screen, family=family)
            families["ends" if ends else "inside"] = family
            passed = [c for c in singles if own.sized(c) and own.label_test(c)]
            kept += passed
            tests.update({id(c): family for c in passed})
        kept, aside = screen.first_added(sorted(kept, key=lambda c: c.label_p),
                                         self.max_candidates)
        return kept, {id(c): tests[id(c)] for c in kept}, families, aside

    def _mask(self, cand: TriggerCandidate | WindowCandidate, x: np.ndarray, y: np.ndarray,
              dataset: Dataset, representation: Representation,
              projection: tuple[np.ndarray, np.ndarray] | None) -> MaskTest:
        """The decisive test of a candidate.

        A few fixed columns (a patch, tabular values) are neutralised in every row. A
        pattern that sits in a different place on every image (a window candidate) or
        covers most columns (a blend, a row pushed to the data's bounds) is not masked
        at all: the model is trained without every row holding it, so it cannot have
        learned it. A natural pattern (a thick stroke of a "1") then leaves its rows
        looking like their class; a trigger's rows look like where they came from.
        Masking most columns instead leaves the model nothing to read: clean rows of
        the class move as far as the candidate's, and the test cannot decide.
        """
        holders = cand.holders if isinstance(cand, WindowCandidate) else cand.rows
        if isinstance(cand, WindowCandidate) or covers_most_columns(
                len(cand.features), x.shape[1], image=dataset.images is not None):
            return mask_test(representation.features, y, dataset.n_classes,
                             candidate=holders, label=cand.label, masked=(),
                             projection=projection, seed=self.seed)
        return mask_test(representation.features, y, dataset.n_classes, candidate=cand.rows,
                         label=cand.label, masked=cand.features, projection=projection,
                         seed=self.seed)

    def _seen(self, cand: WindowCandidate, dataset: Dataset, representation: Representation,
              projection: tuple[np.ndarray, np.ndarray] | None) -> MaskTest:
        """A window candidate's control: :func:`~poisonguard.detect.trigger_mask.seen_kind_test`
        on its holders with the pattern's own cells masked (its rows labelled with its
        class, and at most ``max_rows`` holders of other classes, a seeded sample)."""
        images = dataset.images
        if images is None:  # a window candidate is mined on images only
            raise ValueError("a window candidate needs the dataset's images")
        holders = cand.holders
        others = holders[~np.isin(holders, cand.rows)]
        room = max(self.max_rows - cand.n_rows, 0)
        if len(others) > room:
            rng = np.random.default_rng(self.seed)
            others = rng.choice(others, size=room, replace=False)
        used = np.sort(np.concatenate([cand.rows, others]))
        columns, cells = window_cells(images, used, cand.size, cand.pattern)
        return seen_kind_test(representation.features, dataset.labels, dataset.n_classes,
                              candidate=used, label=cand.label, masked=columns, cells=cells,
                              projection=projection, seed=self.seed)

    def _kind(self, cand: TriggerCandidate | WindowCandidate, test: MaskTest, x: np.ndarray,
              dataset: Dataset, representation: Representation,
              projection: tuple[np.ndarray, np.ndarray] | None,
              n_tests: int) -> tuple[str, str | None]:
        """``(kind, why)``: what the evidence says a confirmed pattern's rows are.

        A masked pattern's test is itself the evidence of relabelled rows (``why`` None):
        with the trigger neutralised, the rest of their features say they came from
        other classes. A wide pattern on a table was not masked: the model trained
        without its rows calls them another class, which rows pushed off their class
        before a clean-label trigger was stamped (a label-consistent attack, Turner et
        al.) do as well, so that alone names no kind. The rest of the rows' features
        are then read as ``cleanlabel`` reads them: each row's pattern cells
        neutralised, a model trained on the other rows classifies them
        (:func:`~poisonguard.detect.trigger_mask.backdoor_kind`). Rows that then look
        like their class have the labels their features give: clean-label. Rows that
        still look like other classes are relabelled or pushed, which the few features
        a wide pattern leaves cannot tell apart (wine clean-label 5%: one column left,
        9 of 9 rows pushed off class 0 through it): undetermined, as where the pattern
        holds every column of its rows.
        """
        if isinstance(cand, WindowCandidate) or dataset.images is not None \
                or not covers_most_columns(len(cand.features), x.shape[1], image=False):
            return "dirty-label", None
        cols = np.asarray(cand.features, dtype=np.intp)
        cells = x[np.ix_(test.rows, cols)] == np.asarray(cand.values, dtype=np.float64)
        if cells.all() and len(cols) == x.shape[1]:
            return "undetermined", ("the pattern holds every column of its rows: no other "
                                    "feature tells where they came from")
        kind_test = mask_test(representation.features, dataset.labels, dataset.n_classes,
                              candidate=test.rows, label=cand.label, masked=cand.features,
                              cells=cells, projection=projection, seed=self.seed)
        kind = backdoor_kind(kind_test, min_other=self.min_other, alpha=self.alpha,
                             tests=n_tests)
        seen = (f"with the pattern's cells masked, {kind_test.n_other} of "
                f"{len(kind_test.rows)} look like other classes (the class's own rows "
                f"{kind_test.base_error:.0%})")
        if kind == "clean-label":
            return kind, seen
        return "undetermined", seen + (": relabelled, or pushed off their class before a "
                                       "clean-label trigger; the columns a wide pattern "
                                       "leaves cannot tell" if kind == "dirty-label" else
                                       ": not beyond the class's own rows at the level")

    def _natural_view(self, test: MaskTest, fresh: np.ndarray) -> bool:
        """Whether a second view of a confirmed trigger adds nothing beyond natural rows.

        A view (a patch's edge on a blank background) can pass its test on the rows
        the trigger already holds while its other rows are natural rows of the class
        showing the same sub-pattern. Its rows not yet flagged join only when they
        alone look like other classes more often than the masked model errs on the
        class (binomial tail at ``alpha``); otherwise they would add the model's own
        errors on natural rows.
        """
        n_other = int(test.other[fresh].sum())
        if not n_other:
            return True
        p = float(binom.sf(n_other - 1, int(fresh.sum()), test.base_error))
        return p >= self.alpha

    @staticmethod
    def _same_finding(cand: TriggerCandidate | WindowCandidate,
                      triggers: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The confirmed trigger of the same class sharing half the smaller row set, if any."""
        for t in triggers:
            shared = len(np.intersect1d(t["_rows"], cand.rows))
            if t["class"] == cand.label and shared >= 0.5 * min(len(t["_rows"]), len(cand.rows)):
                return t
        return None

    @staticmethod
    def _describe(cand: TriggerCandidate | WindowCandidate, image_shape: tuple[int, ...] | None,
                  dataset: Dataset) -> tuple[dict[str, Any], str, str]:
        """(trigger record, short shape phrase, the shared values in words)."""
        if isinstance(cand, WindowCandidate):
            values = np.unique(cand.pattern)
            what = (f"value {values[0]:g}" if len(values) == 1
                    else f"{len(values)} distinct values")
            # the window search finds a pattern wherever it sits; it does not record
            # where, so the words claim no position (a centre patch is one place)
            shape = f"a {cand.size}x{cand.size} patch ({what}) found at any position"
            return ({"features": [], "values": [float(v) for v in cand.pattern.ravel()],
                     "pixels": [], "window": cand.size, "location": "any"},
                    shape, f"one {cand.size}x{cand.size} pattern ({what}) found at any position")
        items, shape, pixels = describe_features(cand.features, cand.values, image_shape,
                                                 dataset.feature_names)
        return ({"features": list(cand.features), "values": list(cand.values),
                 "pixels": pixels, "location": "fixed"}, shape, items)


def _rarity(cand: TriggerCandidate | WindowCandidate, screen: _Screen) -> str:
    """What the label test that admitted ``cand`` says, in words: its pattern is rare
    in the other rows, or (a window pattern natural in the data, whose concentration
    does not reach the level) held by far more of the class's contradicted rows than
    its natural rates predict."""
    if isinstance(cand, WindowCandidate) \
            and cand.concentration_p * screen.family >= screen.alpha:
        return (f"{cand.contradicted} of them called other classes by a model of the rest, "
                f"where the pattern's natural rates predict {cand.expected:.1f}")
    return "which few other rows have"


def _hypothesis(kind: str, cls: object, shape: str, why: str | None, *, n_rows: int,
                n_flagged: int) -> str:
    """The hypothesis line of a confirmed pattern of ``kind`` (:meth:`TriggerDetector._kind`).

    ``n_rows`` holders share the pattern; ``n_flagged`` of them are flagged (those the
    test says look like other classes). Where the two differ the line says both, so
    its count is never read as the number of flagged rows.
    """
    held = f"{n_rows} rows share {shape}" + (
        f" ({n_flagged} of them flagged)" if n_flagged != n_rows else "")
    if kind == "dirty-label":
        return f"backdoor -> class {cls}: {held}"
    if kind == "clean-label":
        return (f"clean-label backdoor? class {cls}: {held}; {why}: "
                "their labels agree with their other features")
    return f"backdoor -> class {cls}: {held}; relabelled or not: undetermined ({why})"
