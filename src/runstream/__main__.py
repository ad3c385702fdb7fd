"""``python -m runstream`` is the ``runstream`` command."""

from __future__ import annotations

import sys

from ._cli._main import main

sys.exit(main())
