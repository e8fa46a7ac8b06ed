"""``distilqa serve``: a QA model behind an HTTP endpoint (Starlette + uvicorn, the optional ``serve`` extra).

:mod:`distilqa.serve.app` is the ASGI app, :mod:`distilqa.serve.batcher` the dynamic micro-batching and
:mod:`distilqa.serve.metrics` the Prometheus text. Answers come from :meth:`distilqa.qa.predictor.QAPredictor.answer`,
the code ``distilqa predict`` runs.
"""
