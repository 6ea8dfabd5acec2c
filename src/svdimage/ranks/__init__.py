"""Choosing a rank: the rank language and everything it measures, in one package.

==========================  ================================================================
:mod:`.criteria`            the language (``psnr=35``, ``knee``): criterion kinds, declared
                            once; ``resolve_criterion``, ``explain``, ``recommend``
:mod:`.growth`              how much SVD a request needs: ``resolve_rank_items`` (rank items
                            to an SVD and ranks), ``decompose_for``, ``describe_spectrum``
:mod:`.selection`           the rules: ``rank_for_error``, ``rank_for_energy``, ...; the
                            explicit ``MeasurementCache``
:mod:`.storage`             what a rank costs to store: float32 factors or a real ``.svdz``
:mod:`.displayed_quality`   PSNR and SSIM of the displayed (clipped) approximations
==========================  ================================================================

The modules run one way, top to bottom of that table's reverse: ``displayed_quality`` and
``storage`` at the bottom, ``criteria`` and ``growth`` at the top (an import-linter contract
in ``pyproject.toml``). Before 0.2 they were top-level modules (``svdimage.criteria``,
``svdimage.rank_selection``, ...); those names still import, with a ``DeprecationWarning``,
until 0.3.
"""

from svdimage.ranks import criteria, displayed_quality, growth, selection, storage

__all__ = ["criteria", "growth", "selection", "storage", "displayed_quality"]
