import os
import sys

os.environ.setdefault("MPLBACKEND", "Agg")

from ._runner import main  # noqa: E402

sys.exit(main())
