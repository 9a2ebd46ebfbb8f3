"""Shared pieces of the diffusion experiments: data loading only (none is shared at present).

The helpers that lived here moved to the library: the inf-tolerant divergences to
:mod:`opdiff.diffusion.laws`, ``radial_mean`` and ``monte_carlo_agreement`` to
:mod:`opdiff.diffusion.oracle`. ``kl`` and ``radial_mean`` are re-exported for the
learned-diffusion experiments until they import them from the library.
"""

from opdiff.diffusion.laws import kl as kl  # noqa: F401
from opdiff.diffusion.oracle import radial_mean as radial_mean  # noqa: F401
