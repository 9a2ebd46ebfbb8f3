import os
import sys

if __name__ == "__main__":  # not on import: ``all --jobs N`` spawns workers that import this
    os.environ.setdefault("MPLBACKEND", "Agg")

    from ._runner import main

    sys.exit(main())
