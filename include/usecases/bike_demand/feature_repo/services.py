"""Feature services of bike_demand. A new version gets a new name; old ones stay for old models."""

from feast import FeatureService
from views import daily_demand, slot_demand

bike_demand_v1 = FeatureService(
    name="bike_demand_v1",
    features=[slot_demand, daily_demand],
    description="Model inputs from the lake for the hourly rentals model (request columns come with the hour)",
)
