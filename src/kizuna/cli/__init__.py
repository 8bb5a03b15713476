"""Command line edges: the `kizuna` command (Typer + Rich)."""
