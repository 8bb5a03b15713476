"""The planning simulator: the scheduling core driven by a simulated clock."""
