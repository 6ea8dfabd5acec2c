"""``python -m svdimage``: the same as the ``svdimage`` command."""

from svdimage.cli import main

main()
