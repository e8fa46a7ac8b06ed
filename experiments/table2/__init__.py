"""The DistilBERT paper's Table 2 replayed at small scale: studies as data (``studies/*.yaml``), one runner
(:mod:`experiments.table2.run`), and the summaries and figure of the recorded rows (:mod:`experiments.table2.report`).
"""
