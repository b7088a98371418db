"""``python -m cnncore {train,eval,predict,summary,demo}`` (same as the ``cnncore`` script)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
