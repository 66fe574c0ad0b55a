"""How the recipe's numbers are written: token counts with a suffix, percentages (shared by the loader, the ledger
and the command line)."""
from __future__ import annotations

# The suffixes a stated number may carry in the recipe data ('11.2T', '50B', '85%').
SUFFIXES = {"": 1.0, "k": 1e3, "M": 1e6, "B": 1e9, "T": 1e12, "%": 0.01}


def human_tokens(n: float) -> str:
    """1.1136e13 -> '11.14T', 4.72e10 -> '47.19B'."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}"
    return f"{n:g}"


def pct(x: float, digits: int = 1) -> str:
    """0.8512 -> '85.1%'."""
    return f"{100 * x:.{digits}f}%"
