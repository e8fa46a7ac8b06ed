"""Measurement behind ``distilqa benchmark``: inference speed/accuracy (``inference``), training cost
(``training``) and the process helpers both use (``process``). Benchmarks measure; they never assert."""
