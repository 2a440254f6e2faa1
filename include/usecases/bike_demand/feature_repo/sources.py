"""Data sources of bike_demand: the daily feature tables of the lake, and the score push source."""

from glideslope.features.definitions import lake_source, predictions_source, repo_usecase

_uc = repo_usecase(__file__)

slot_demand_source = lake_source(_uc, "slot_demand")
daily_demand_source = lake_source(_uc, "daily_demand")
predictions_push = predictions_source(_uc)
