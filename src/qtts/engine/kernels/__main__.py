"""``python -m qtts.engine.kernels``: build the int8 kernel ahead of first use (install.sh)."""

import sys

from qtts.engine.kernels import status

print(status(), file=sys.stderr)
