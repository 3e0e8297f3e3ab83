"""`python -m ptdit.cli ...` (and `torchrun -m ptdit.cli ...`, the multi-GPU training rule): the `ptdit` command."""

import sys

from ptdit.cli import main

sys.exit(main())
