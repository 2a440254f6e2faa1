"""Feature views of flight_delay.

Every feature row of day D is stamped at the end of local day D, so a flight joins the statistics
of the day before it. The TTLs say how stale a row may be before a flight gets no value at all:
a missed ETL night degrades gracefully for a couple of days; plane data barely changes.
"""

from datetime import timedelta

from entities import carrier, flight, origin, route, tailnum
from feast import FeatureView, Field
from feast.types import Float64, Int64, String
from sources import (
    carrier_stats_source,
    origin_weather_source,
    plane_features_source,
    predictions_push,
    route_stats_source,
)

carrier_stats = FeatureView(
    name="carrier_stats",
    entities=[carrier],
    ttl=timedelta(days=3),
    schema=[
        Field(name="carrier_late_rate_7d", dtype=Float64, description="Share of late flights, days D-6..D"),
        Field(name="carrier_mean_arr_delay_7d", dtype=Float64, description="Mean arrival delay (min), D-6..D"),
        Field(name="carrier_flights_7d", dtype=Int64, description="Flights operated, D-6..D"),
        Field(name="carrier_late_rate_28d", dtype=Float64, description="Share of late flights, D-27..D"),
        Field(name="carrier_cancel_rate_7d", dtype=Float64, description="Share cancelled/diverted, D-6..D"),
    ],
    source=carrier_stats_source,
    online=True,
)

route_stats = FeatureView(
    name="route_stats",
    entities=[route],
    ttl=timedelta(days=3),
    schema=[
        Field(name="route_late_rate_28d", dtype=Float64, description="Share of late flights, D-27..D"),
        Field(name="route_mean_arr_delay_28d", dtype=Float64, description="Mean arrival delay (min), D-27..D"),
        Field(name="route_flights_28d", dtype=Int64, description="Flights operated, D-27..D"),
    ],
    source=route_stats_source,
    online=True,
)

origin_weather = FeatureView(
    name="origin_weather",
    entities=[origin],
    ttl=timedelta(days=2),
    schema=[
        Field(name="wx_temp_mean", dtype=Float64, description="Mean temperature (F) on day D"),
        Field(name="wx_humid_mean", dtype=Float64, description="Mean relative humidity on day D"),
        Field(name="wx_precip_sum", dtype=Float64, description="Precipitation (in) on day D"),
        Field(name="wx_wind_speed_max", dtype=Float64, description="Highest wind speed (mph) on day D"),
        Field(name="wx_visib_min", dtype=Float64, description="Lowest visibility (mi) on day D"),
        Field(name="wx_pressure_mean", dtype=Float64, description="Mean sea-level pressure (mb) on day D"),
    ],
    source=origin_weather_source,
    online=True,
)

plane_features = FeatureView(
    name="plane_features",
    entities=[tailnum],
    ttl=timedelta(days=30),
    schema=[
        Field(name="plane_age", dtype=Float64, description="Years since the aircraft was built"),
        Field(name="plane_seats", dtype=Float64, description="Seats in the aircraft"),
    ],
    source=plane_features_source,
    online=True,
)

# Precomputed scores, pushed nightly by flight_delay__score: an application reads a flight's
# probability of arriving late by flight_id without running the model.
flight_delay_predictions = FeatureView(
    name="flight_delay_predictions",
    entities=[flight],
    ttl=timedelta(days=3),
    schema=[
        Field(name="prediction", dtype=Float64, description="Probability that the flight arrives late"),
        Field(name="model_version", dtype=String, description="Registered model version that scored it"),
        Field(name="ds", dtype=String, description="Scoring night (logical date)"),
    ],
    source=predictions_push,
    online=True,
)
