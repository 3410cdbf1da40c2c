"""Money as the store keeps it: exact integer picodollars (10⁻¹² USD), so sums never drift.

A call to a small model costs a few millionths of a dollar; summed as floats over millions of
calls that loses cents. Prices, rollups and reports convert with these two functions only.
"""

from __future__ import annotations

from decimal import Decimal

PICO = Decimal(10) ** 12
"""Picodollars per dollar."""


def usd_to_pico(value: Decimal) -> int:
    """Dollars as integer picodollars, rounded half to even at the last picodollar.

    Args:
        value: An amount in dollars.

    Returns:
        The same amount in picodollars.

    Example:
        >>> usd_to_pico(Decimal("0.000003"))
        3000000
    """
    return int((value * PICO).to_integral_value())


def pico_to_usd(value: int) -> Decimal:
    """Integer picodollars as exact dollars.

    Args:
        value: An amount in picodollars.

    Returns:
        The same amount in dollars.

    Example:
        >>> pico_to_usd(3_000_000)
        Decimal('0.000003')
    """
    return Decimal(value) / PICO
