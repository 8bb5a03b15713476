"""Backends that run gangs: the protocol every backend implements and the local executor
(ADR 0021). Ray and Slurm backends come later behind the same protocol."""
