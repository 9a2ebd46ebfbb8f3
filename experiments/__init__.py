"""opdiff experiments: each module is one experiment, run through ``python -m experiments``.

An experiment module defines:

* ``NAME`` (str), ``DESCRIPTION`` (one line) and ``DTYPE`` (``"float32"`` or ``"float64"``);
* ``Config``, a frozen dataclass holding every knob, ``seed`` included;
* ``PRESETS``: ``{"smoke": Config(...), "quick": Config(...), "full": Config(...)}``;
* ``run(cfg, out_dir) -> Report``, which computes, draws its figures into ``out_dir`` and
  returns metrics, bounds and checks; the runner writes ``results.json``.
"""

EXPERIMENTS = ("approx_classics", "operator_data")
