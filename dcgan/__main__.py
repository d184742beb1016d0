"""`python -m dcgan`: see dcgan.cli."""

import sys

from dcgan.cli import main

sys.exit(main())
