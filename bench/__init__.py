"""Benchmarks for cpl and the corpus generator they run on (`python -m bench.corpus`)."""
