"""How gradbench prints a measured number: the benchmark's console table and its page (report) share it.

No TensorFlow here, so report can import it without starting TensorFlow."""

import math


def fmt(value: float) -> str:
    """Three significant digits, without exponents for everyday magnitudes."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) >= 0.001 else f"{value:.2e}"
