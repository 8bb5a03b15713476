"""Kizuna: runs a national AI capacity program end to end."""

__version__ = "0.1.0"
