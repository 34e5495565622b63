"""Benchmarks of the executor against the designs it replaces and the limits of the machine.

Run them from the project root with ``python -m benchmarks`` (see ``benchmarks/README.md``).
"""
