"""Package layout only (everything else is in pyproject.toml).

The library is ``opdiff`` and its subpackages. The experiment registry and runner live in the
repository's ``experiments/`` folder (``python -m experiments`` in a clone) and are installed as
``opdiff_experiments`` — not as a top-level ``experiments`` package, a name too common to claim
in site-packages. Their modules import each other relatively, so both names work.
"""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["opdiff", "opdiff.*"]) + ["opdiff_experiments"],
    package_dir={"opdiff_experiments": "experiments"},
)
