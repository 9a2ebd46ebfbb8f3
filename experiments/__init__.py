"""opdiff experiments: each public module here is one experiment, run through
``python -m experiments``.

An experiment module defines:

* ``NAME`` (its module name), ``DESCRIPTION`` (one line) and ``DTYPE`` (``"float32"`` or
  ``"float64"``);
* ``Config``, a frozen dataclass holding every knob, ``seed`` included;
* ``PRESETS``: ``{"smoke": Config(...), "quick": Config(...), "full": Config(...)}``;
* ``run(cfg, out_dir) -> Report``, which computes, draws its figures into ``out_dir`` and
  returns metrics, bounds and checks; the runner writes ``results.json``.

``EXPERIMENTS`` lists them: every module of this package whose name does not start with ``_``,
the foundations first, then alphabetically.
"""

import pkgutil
from pathlib import Path

_FIRST = ("approx_classics", "operator_data")
_FOUND = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                if not m.name.startswith("_"))
EXPERIMENTS = tuple([n for n in _FIRST if n in _FOUND] + [n for n in _FOUND if n not in _FIRST])
