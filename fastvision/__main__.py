"""python -m fastvision train|evaluate (see fastvision/cli.py)."""

import sys

from fastvision.cli import main

sys.exit(main())
