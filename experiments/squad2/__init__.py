"""SQuAD 2.0-style data made from SQuAD 1.1 by a seeded transformation (:mod:`experiments.squad2.make_v2`)."""
