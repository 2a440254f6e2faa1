"""Data sources of flight_delay: the daily feature tables of the lake, and the score push source.

Paths come from the profile's settings (glideslope.features.definitions), never from this file.
"""

from glideslope.features.definitions import lake_source, predictions_source, repo_usecase

_uc = repo_usecase(__file__)

carrier_stats_source = lake_source(_uc, "carrier_stats")
route_stats_source = lake_source(_uc, "route_stats")
origin_weather_source = lake_source(_uc, "origin_weather")
plane_features_source = lake_source(_uc, "plane_features")
predictions_push = predictions_source(_uc)
