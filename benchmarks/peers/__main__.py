from __future__ import annotations

from ._harness import main

raise SystemExit(main())
