"""Feature views of bike_demand.

Every feature row of day D is stamped at the end of local day D, so an hour joins the rentals of
the days before it. A missed ETL night leaves the previous rows usable for two more days.
"""

from datetime import timedelta

from entities import hour, slot, system
from feast import FeatureView, Field
from feast.types import Float64, Int64, String
from sources import daily_demand_source, predictions_push, slot_demand_source

slot_demand = FeatureView(
    name="slot_demand",
    entities=[slot],
    ttl=timedelta(days=3),
    schema=[
        Field(name="slot_mean_cnt_28d", dtype=Float64, description="Mean rentals in this slot, days D-27..D"),
        Field(name="slot_p90_cnt_28d", dtype=Float64, description="90th percentile of rentals in this slot, D-27..D"),
        Field(name="slot_hours_28d", dtype=Int64, description="Hours of this slot recorded, D-27..D"),
        Field(name="slot_mean_cnt_7d", dtype=Float64, description="Mean rentals in this slot, D-6..D"),
    ],
    source=slot_demand_source,
    online=True,
)

daily_demand = FeatureView(
    name="daily_demand",
    entities=[system],
    ttl=timedelta(days=3),
    schema=[
        Field(name="daily_rentals_mean_7d", dtype=Float64, description="Mean rentals per day, D-6..D"),
        Field(name="casual_share_7d", dtype=Float64, description="Share of rentals by casual users, D-6..D"),
        Field(name="rentals_on_day", dtype=Float64, description="Rentals on day D"),
    ],
    source=daily_demand_source,
    online=True,
)

# Precomputed forecasts, pushed nightly by bike_demand__score: a rebalancing planner reads the
# expected rentals of an hour by hour_id without running the model.
bike_demand_predictions = FeatureView(
    name="bike_demand_predictions",
    entities=[hour],
    ttl=timedelta(days=3),
    schema=[
        Field(name="prediction", dtype=Float64, description="Expected rentals in the hour"),
        Field(name="model_version", dtype=String, description="Registered model version that scored it"),
        Field(name="ds", dtype=String, description="Scoring night (logical date)"),
    ],
    source=predictions_push,
    online=True,
)
