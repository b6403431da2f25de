"""The CLI: one module per command group, each translating flags into a request for the
library (``synthesis``, ``voices``, ``engine``) or the resident engine, and its answer into
files, stdout data and stderr messages.  ``main`` maps errors to exit codes once.
"""
