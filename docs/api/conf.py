"""Sphinx configuration of svdimage's API reference, generated from the docstrings.

Build it as CI does (warnings are errors)::

    python -m sphinx -W --keep-going -b html docs/api docs/api/_build
"""

from importlib import metadata

project = "svdimage"
author = "svdimage developers"
copyright = "svdimage developers"
release = metadata.version("svdimage")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "sphinx.ext.extlinks",
    "numpydoc",
]

# The References sections cite papers as :doi:`...` and :arxiv:`...`.
extlinks = {
    "doi": ("https://doi.org/%s", "doi:%s"),
    "arxiv": ("https://arxiv.org/abs/%s", "arXiv:%s"),
}

# Every public module is documented from its docstrings; autosummary writes one page each.
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = "svdimage API reference"
