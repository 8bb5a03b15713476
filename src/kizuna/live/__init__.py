"""The live loop: store -> snapshot -> the scheduling core -> backend -> store (ADR 0022)."""
