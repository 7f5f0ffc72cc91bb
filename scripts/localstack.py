"""`scripts/up`: run the local stack in the foreground (see scripts/devkit/stack.py)."""

import sys

from scripts.devkit.stack import main

if __name__ == "__main__":
    sys.exit(main())
