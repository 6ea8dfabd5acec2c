import numpy as np
import pytest

from svdimage import decompose
from svdimage.ranks.criteria import SHAPE_CRITERIA, Criterion, explain, resolve_criterion
from svdimage.ranks.growth import decompose_for, rank_without_spectrum


@pytest.mark.parametrize(
    "criterion",
    [
        Criterion("ratio", 8.0),
        Criterion("bytes", 60_000),
        Criterion("bpp", 2.0),
        Criterion("percent", 5.0),
    ],
)
def test_rank_without_spectrum_is_the_answer_of_the_complete_svd(camera, criterion):
    """A criterion of the shape picks, before any SVD, the rank that resolving it on the
    complete SVD picks."""
    assert criterion.name in SHAPE_CRITERIA
    complete = decompose(camera, method="exact")
    assert rank_without_spectrum(camera, criterion) == resolve_criterion(complete, criterion)


def test_rank_without_spectrum_refuses_criteria_of_the_spectrum(camera):
    with pytest.raises(ValueError, match="needs the singular values"):
        rank_without_spectrum(camera, Criterion("psnr", 30.0))


def test_decompose_for_holds_the_ranks_asked_and_no_complete_svd(astronaut):
    """Ranks alone, on an image past the complete SVD's crossover: the top max(ranks)
    triplets, equal to LAPACK's, not the complete SVD."""
    import scipy.linalg
    import skimage.transform

    image = skimage.transform.resize(astronaut[:, :, 1], (1000, 1400), order=1)
    image = image.astype(np.float32)
    svd = decompose_for(image, ranks=[5, 40])
    assert not svd.is_complete and svd.max_rank >= 40
    reference = scipy.linalg.svd(image.astype(np.float64), compute_uv=False)
    np.testing.assert_allclose(svd.s[:40], reference[:40], rtol=1e-4)


def test_decompose_for_grows_to_the_extrapolated_answer_of_error_rules(astronaut, monkeypatch):
    """PSNR and energy targets grow K to their answers extrapolated from the spectrum so
    far (not by doubling), and answer as the complete SVD with scikit-image's PSNR does."""
    import skimage.metrics
    import skimage.transform

    from svdimage import decompose
    from svdimage.ranks import growth
    from svdimage.ranks.selection import rank_for_energy

    image = np.clip(skimage.transform.resize(astronaut, (900, 1200), order=1), 0, 1)
    image = image.astype(np.float32)
    targets = [Criterion("psnr", 33.0), Criterion("energy", 0.999)]
    proposed = []
    real = growth._proposed_rank
    monkeypatch.setattr(
        growth, "_proposed_rank", lambda *a: proposed.append(real(*a)) or proposed[-1]
    )
    answers = {}
    svd = decompose_for(image, targets, answers=answers)
    assert proposed and proposed[-1] == svd.max_rank  # the last K was the proposal
    assert (
        max(answers.values()) < svd.max_rank <= growth.PROPOSAL_MARGIN * 1.5 * max(answers.values())
    )
    complete = decompose(image, method="exact")
    assert answers[targets[1]] == rank_for_energy(complete, 0.999)
    k = answers[targets[0]]
    assert k == resolve_criterion(complete, targets[0], image=image)
    for rank, meets in ((k, True), (k - 1, False)):
        psnr = skimage.metrics.peak_signal_noise_ratio(
            image, complete.reconstruct(rank), data_range=1.0
        )
        assert bool(psnr >= 33.0) == meets


def test_decompose_for_grows_until_a_svdz_budget_is_answered(astronaut):
    """Regression: the growth rule once resolved budgets in float32 values whatever the
    caller's storage, stopped early, and choose --storage svdz answered the last computed
    rank instead of the largest that fits."""
    import skimage.transform

    from svdimage import decompose

    image = skimage.transform.resize(astronaut[:, :, 0], (800, 820), order=1).astype(np.float32)
    budget = Criterion("bytes", 20_000)
    answers = {}
    svd = decompose_for(image, [budget], storage="svdz", answers=answers)
    answer = resolve_criterion(svd, budget, image=image, storage="svdz")
    assert answers[budget] == answer <= svd.max_rank
    values_answer = resolve_criterion(svd, budget, image=image, storage="values")
    assert values_answer < answer  # the two storages differ here: the test can tell them apart
    exact = decompose(image, method="exact")
    assert resolve_criterion(exact, budget, image=image, storage="svdz") == answer
    # Only explaining the choice needs no singular vectors: a rank-1 SVD, the same answer.
    only = decompose_for(image, [budget], storage="svdz", explain_only=True)
    assert only.max_rank == 1
    choice = explain(only, budget, image=image, storage="svdz", rank=answers[budget])
    assert choice == explain(exact, budget, image=image, storage="svdz")


def test_describe_spectrum_equals_lapack_from_the_top_singular_values_only():
    """info's rule: the energy ranks and σ₁ from as few singular values as 99.9 % of the
    energy needs equal those of LAPACK's complete spectrum; the numerical rank only when
    every singular value was computed."""
    import scipy.linalg

    from svdimage.ranks.growth import INFO_ENERGIES, describe_spectrum

    rng = np.random.default_rng(3)
    image = np.outer(np.hanning(900), np.hanning(800)) + 0.02 * rng.random((900, 800))
    image = image.astype(np.float32)
    facts = describe_spectrum(image)
    s = scipy.linalg.svd(image.astype(np.float64), compute_uv=False)
    energy = np.cumsum(s**2) / np.sum(s**2)
    assert not facts.svd.is_complete and facts.numerical_rank is None
    for fraction in INFO_ENERGIES:
        assert facts.rank_for_energy[fraction] == int(np.argmax(energy >= fraction - 1e-12)) + 1
    assert facts.sigma1[0] == pytest.approx(s[0], rel=1e-5)
    full = describe_spectrum(image, full=True)
    assert full.svd.is_complete and full.numerical_rank == np.linalg.matrix_rank(image)


def test_describe_spectrum_of_a_chunked_image_streams_and_agrees(camera):
    import dask.array as da

    from svdimage.ranks.growth import describe_spectrum

    lazy = da.from_array(np.rint(camera * 255).astype(np.uint8), chunks=(128, 128))
    streamed = describe_spectrum(lazy)
    loaded = describe_spectrum(np.rint(camera * 255).astype(np.uint8) / 255.0)
    assert streamed.svd.max_rank == 200 and streamed.numerical_rank is None
    assert streamed.rank_for_energy == loaded.rank_for_energy
    # 8-bit pixels are multiplied in float32 out of core (as a loaded photo is), in float64
    # here: the top singular value agrees to float32 precision.
    assert streamed.sigma1 == pytest.approx(loaded.sigma1, rel=1e-6)
