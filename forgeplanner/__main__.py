"""`python -m forgeplanner` is the same as the `forgeplanner` console script."""

import sys

from forgeplanner.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
