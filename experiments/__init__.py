"""opdiff experiments: each public module here is one experiment, run through
``python -m experiments``.

An experiment module defines, and nothing else (its maths lives in opdiff/):

* ``NAME`` (its module name), ``DESCRIPTION`` (one line) and ``DTYPE`` (``"float32"`` or
  ``"float64"``);
* ``Config``, a frozen dataclass holding every knob, ``seed`` included; each field's annotation
  declares its rule (``experiments/_config.py``) and ``array_sizes()`` its largest arrays (the
  size guard);
* ``PRESETS``: ``{"smoke": Config(...), "quick": Config(...), "full": Config(...)}``;
* ``run(cfg, key) -> results``: a dict of arrays, numbers, strings, lists and dicts; the runner
  passes ``jax.random.key(cfg.seed)`` and saves the results (``results.json`` and
  ``results.npz``);
* ``claims(cfg, results) -> list[opdiff.claims.Claim]``: every verdict computed by a constructor
  of :mod:`opdiff.claims`;
* ``plot(results, out_dir) -> list[str]``: draws from the saved results alone (``python -m
  experiments plot NAME`` redraws).

``EXPERIMENTS`` lists them: every module of this package whose name does not start with ``_``,
the foundations first, then alphabetically.
"""

import pkgutil
from pathlib import Path

_FIRST = ("approx_classics", "operator_data")
_FOUND = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                if not m.name.startswith("_"))
EXPERIMENTS = tuple([n for n in _FIRST if n in _FOUND] + [n for n in _FOUND if n not in _FIRST])
