"""Rate control: step levels, the rate-distortion comparison of files, and the patch side
that a byte budget searches."""

import pytest

from svdimage.codec import encode
from svdimage.codec._patches import KEEP_FACTOR, PatchTrials
from svdimage.codec._rate import (
    STEP_LEVELS,
    cheapest,
    first_guess,
    level_for_budget,
    level_to_step,
    side_for_budget,
    step_to_level,
)


def test_levels_are_finer_steps_and_round_trip():
    steps = [level_to_step(n) for n in range(STEP_LEVELS + 1)]
    assert all(a > b for a, b in zip(steps, steps[1:]))
    assert steps[0] == 2.0 and steps[1] / steps[0] == pytest.approx(0.99)
    assert all(step_to_level(level_to_step(n)) == n for n in (0, 1, 250, STEP_LEVELS))
    assert step_to_level(100.0) == 0 and step_to_level(1e-9) == STEP_LEVELS  # clipped


def test_cheapest_weighs_error_against_bits_at_the_coarser_step(camera):
    small, large = encode(camera, step=0.08), encode(camera, step=0.04)
    assert len(small) < len(large)
    slope = KEEP_FACTOR * 0.08**2 * 8  # the error one byte is worth, at the coarser step
    extra = slope * (len(large) - len(small))
    # The larger file wins when it removes more error than its extra bytes are worth.
    assert cheapest([(small, 1000.0), (large, 1000.0 - 1.01 * extra)]) == 1
    assert cheapest([(small, 1000.0), (large, 1000.0 - 0.99 * extra)]) == 0
    assert cheapest([(large, 5.0), (small, 5.0)]) == 1  # equal errors: fewer bytes


def _trials_of(image, built):
    def trials_of(side):
        built.append(side)
        return PatchTrials(image, patch=side, max_rank=None, chroma="420", measure_error=True)

    return trials_of


def test_side_for_budget_searches_the_cheaper_first_trial(camera, monkeypatch):
    budget = 1.5 * camera.size / 8
    # Each side's first trial, made by hand, and its rate-distortion cost.
    made = []
    for side in (4, 8):
        trials = PatchTrials(camera, patch=side, max_rank=None, chroma="420", measure_error=True)
        data = trials.at_step(level_to_step(first_guess(trials, budget)[0]))
        made.append((data, trials.squared_error(data)))
    winner = (4, 8)[cheapest(made)]
    assert winner == 4  # tried first: its trials are rebuilt for the search
    encoded = []
    at_step = PatchTrials.at_step

    def counted(self, step):
        if (step, self.decide_at) not in self._files:
            encoded.append(self.patch)
        return at_step(self, step)

    monkeypatch.setattr(PatchTrials, "at_step", counted)
    built: list[int] = []
    trials, guess = side_for_budget(_trials_of(camera, built), (4, 8), budget)
    assert trials.patch == winner and built == [4, 8, 4]
    assert encoded == [4, 8]  # the rebuilt side holds its first file: not encoded again
    assert trials.at_step(level_to_step(guess[0])) == made[0][0]
    # Its search then ends at the file encode() writes for that side alone.
    level = level_for_budget(
        trials, budget, lambda n: len(trials.at_step(level_to_step(n))), guess=guess
    )
    monkeypatch.undo()
    assert trials.at_step(level_to_step(level)) == encode(camera, bpp=1.5, tile=4)


def test_side_for_budget_keeps_the_last_side_when_it_wins(camera):
    budget = 0.25 * camera.size / 8
    built: list[int] = []
    trials, _ = side_for_budget(_trials_of(camera, built), (4, 8), budget)
    assert trials.patch == 8 and built == [4, 8]  # nothing rebuilt
    data = encode(camera, bpp=0.25)
    assert data == encode(camera, bpp=0.25, tile=8)
    assert 0.97 * budget <= len(data) <= budget


def test_a_tiny_image_and_budget_search_without_warnings(recwarn):
    # Its size estimates round to zero bytes at coarse steps: the search takes their logs.
    import numpy as np

    image = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    for side in (4, 8):
        trials = PatchTrials(image, patch=side, max_rank=None, chroma="420")
        for budget in (30, 300):
            level, slope, _ = first_guess(trials, budget)
            assert 0 <= level <= STEP_LEVELS and slope > 0
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
