"""``python -m candle_embed``: see ``candle_embed.cli``."""

from __future__ import annotations

import sys

from candle_embed.cli import main

if __name__ == "__main__":
    sys.exit(main())
