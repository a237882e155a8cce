"""Where the shared real media live: `../shared/data` beside the checkout (CI has it too)."""
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
