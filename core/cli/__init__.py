"""The command line, `python -m core COMMAND`: one module per command, shared argument helpers in `args`.

Nothing in the library imports this package.
"""

from core.cli.main import build_parser, main

__all__ = [
    "build_parser", "main",
]
