"""`python -m dcgan`: see dcgan.apps.cli."""

import sys

from dcgan.apps.cli import main

sys.exit(main())
