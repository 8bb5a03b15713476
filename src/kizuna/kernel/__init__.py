"""The vocabulary every package shares: ids, units, clocks and domain errors. Pure."""
