"""Research code around distilqa: the Table 2 studies (``table2``) and performance probes (``perf``).

Not part of the installed package: run from the repository root (``python -m experiments.table2.run ...``).
Everything here uses distilqa's public library API only. See experiments/README.md.
"""
