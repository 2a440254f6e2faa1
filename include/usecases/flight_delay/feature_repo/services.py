"""Feature services of flight_delay. A new version gets a new name; old ones stay for old models."""

from feast import FeatureService
from views import carrier_stats, origin_weather, plane_features, route_stats

flight_delay_v1 = FeatureService(
    name="flight_delay_v1",
    features=[carrier_stats, route_stats, origin_weather, plane_features],
    description="Model inputs from the lake for the late-arrival model (request columns come with the flight)",
)
