"""``python -m nemoflow`` runs the command line."""

import sys

from nemoflow._cli import main

sys.exit(main())
