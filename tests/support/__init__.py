"""Helpers shared by the tests and the benchmarks: real directory trees laid out like a node."""
