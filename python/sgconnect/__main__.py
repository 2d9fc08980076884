"""``python -m sgconnect``: the ``sgconnect`` command."""

from .cli import main

raise SystemExit(main())
