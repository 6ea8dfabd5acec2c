"""Deprecated: moved into :mod:`svdimage.ranks` in 0.2; this name is removed in 0.3."""

from svdimage._deprecation import moved_module

moved_module(__name__, "svdimage.ranks.criteria", removed_in="0.3")
