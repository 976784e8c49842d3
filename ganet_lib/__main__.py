"""`python -m ganet_lib` is the same as the `ganet` command."""

import sys

from ganet_lib.runner.cli import main

sys.exit(main())
