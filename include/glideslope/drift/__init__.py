"""Drift monitoring of a use case's champion, and the loop that retrains and escalates.

* :mod:`glideslope.drift.monitor` — one check: Evidently drift of recent predictions' inputs and
  scores vs the champion's reference sample, live performance once labels exist; HTML + JSON
  report in the lake, numbers in MLflow.
* :mod:`glideslope.drift.policy` — pure rules: per-column test direction, drift share, minimum
  sample, performance floor, persistence, loop guards (cooldown, weekly budget, one training
  run at a time), escalation.
* :mod:`glideslope.drift.state` — the persisted state (``Lake.state("drift")``) and
  :func:`~glideslope.drift.state.record_retrain`, which the train stage calls.
* :mod:`glideslope.drift.loop` — record a check, decide, acknowledge; builds the alerts.
* :mod:`glideslope.airflow.ack` — ``glideslope ack``.

Heavy libraries (pandas, Evidently, MLflow) are imported inside the functions that use them.
"""
