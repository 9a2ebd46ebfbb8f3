"""opdiff: a JAX testbed for operator learning and approximation theory.

Importing opdiff changes no global state: no seeds, no ``jax.config`` updates, no warnings
filters. Randomness comes from keys passed in by the caller.
"""

from opdiff import checkpoint as checkpoint
from opdiff import data as data
from opdiff import functions as functions
from opdiff import parallel as parallel
from opdiff.train import NonFiniteError as NonFiniteError
from opdiff.train import NonFiniteLossError as NonFiniteLossError
from opdiff.train import NonFiniteStateError as NonFiniteStateError
from opdiff.train import TrainResult as TrainResult
from opdiff.train import array_batches as array_batches
from opdiff.train import WorkdirBusyError as WorkdirBusyError
from opdiff.train import fit as fit

__version__ = "0.1.0"
__all__ = [
    "NonFiniteError",
    "NonFiniteLossError",
    "NonFiniteStateError",
    "WorkdirBusyError",
    "TrainResult",
    "array_batches",
    "checkpoint",
    "data",
    "fit",
    "functions",
    "parallel",
]
