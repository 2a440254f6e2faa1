"""Spark transform of the flight_delay use case: raw feed of day D -> label table and features.

Runs inside ``spark_jobs/transform.py`` (spark-submit). Time handling, which decides leakage:

* flights are keyed by their scheduled departure hour (``time_hour``, UTC) -> ``event_timestamp``;
* every feature row built from day D is stamped at the end of local day D
  (D+1 00:00 America/New_York, in UTC). A flight departing at t joins the latest row stamped
  <= t, so a flight on day X sees statistics up to X-1 and never its own day's outcomes;
* trailing windows (7 and 28 days) end at D and read only flights dated <= D.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

LOCAL_TZ = "America/New_York"
LOOKBACK_DAYS = 27  # the longest trailing window is 28 days including D
LATE_MINUTES = 15

INT_COLUMNS = ["year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time",
               "sched_arr_time", "arr_delay", "flight", "distance", "hour", "minute", "air_time"]
WEATHER_NUMERIC = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]


def _flight_rows(df: DataFrame) -> DataFrame:
    """Typed flights with the entity key and request columns (shared by flights and schedule)."""
    for c in INT_COLUMNS:
        if c in df.columns:
            df = df.withColumn(c, F.col(c).cast("int"))
    flight_date = F.make_date("year", "month", "day")
    return (
        df.withColumn("flight_date", flight_date)
        .withColumn("flight_id", F.concat_ws(
            "-", F.date_format(flight_date, "yyyyMMdd"), "carrier", F.col("flight").cast("string"),
            "origin", "dest", F.lpad(F.col("sched_dep_time").cast("string"), 4, "0")))
        .withColumn("event_timestamp", F.to_timestamp("time_hour"))
        .withColumn("route", F.concat_ws("-", "origin", "dest"))
        .withColumn("dep_hour", F.col("hour"))
        # Spark's dayofweek is 1=Sunday; ISO is 1=Monday.
        .withColumn("day_of_week", ((F.dayofweek(flight_date) + 5) % 7 + 1).cast("int"))
        .withColumn("month", F.col("month").cast("int"))
        .withColumn("distance", F.col("distance").cast("double"))
    )


REQUEST = ["flight_id", "event_timestamp", "carrier", "origin", "dest", "route", "tailnum", "flight",
           "dep_hour", "day_of_week", "month", "distance"]


def build(inputs: Any, ds: str) -> dict[str, DataFrame]:
    """Outputs for day ``ds``: {"curated/flights", "curated/schedule", "features/<table>"}."""
    day = date.fromisoformat(ds)
    window_days = [(day - timedelta(days=i)).isoformat() for i in range(LOOKBACK_DAYS, -1, -1)]
    stamp = F.to_utc_timestamp(F.lit((day + timedelta(days=1)).isoformat()).cast("timestamp"), LOCAL_TZ)

    # Only rows dated inside the window: a delivery must never bring another day's outcomes into
    # D's statistics (the raw gate rejects off-day rows; this keeps the window closed regardless).
    history = _flight_rows(inputs.raw("flights", window_days)).where(
        F.col("flight_date").between(F.lit(window_days[0]).cast("date"), F.lit(ds).cast("date")))
    history = (
        history.withColumn("cancelled", F.col("arr_delay").isNull())
        .withColumn("is_late", F.when(F.col("cancelled") | (F.col("arr_delay") >= LATE_MINUTES), 1)
                    .otherwise(0).cast("int"))
    )
    today = history.where(F.col("flight_date") == F.lit(ds).cast("date"))
    flights = today.select(*REQUEST, "dep_delay", "arr_delay", "cancelled", "is_late",
                           F.lit(ds).alias("ds"))

    schedule = _flight_rows(inputs.raw("schedule", [ds])).select(
        *REQUEST, F.lit(ds).alias("ds"), F.date_format("flight_date", "yyyy-MM-dd").alias("flight_date"))

    last7 = history.where(F.col("flight_date") > F.lit((day - timedelta(days=7)).isoformat()).cast("date"))
    carrier_7 = last7.groupBy("carrier").agg(
        F.avg("is_late").alias("carrier_late_rate_7d"),
        F.avg("arr_delay").alias("carrier_mean_arr_delay_7d"),
        F.count("*").cast("long").alias("carrier_flights_7d"),
        F.avg(F.col("cancelled").cast("double")).alias("carrier_cancel_rate_7d"),
    )
    carrier_28 = history.groupBy("carrier").agg(F.avg("is_late").alias("carrier_late_rate_28d"))
    carrier_stats = carrier_28.join(carrier_7, "carrier", "left").fillna(
        {"carrier_late_rate_7d": 0.0, "carrier_flights_7d": 0, "carrier_cancel_rate_7d": 0.0})
    # A carrier absent for the last 7 days has no 7-day rate; keep only carriers seen this week.
    carrier_stats = carrier_stats.where(F.col("carrier_flights_7d") > 0)

    route_stats = history.groupBy("route").agg(
        F.avg("is_late").alias("route_late_rate_28d"),
        F.avg("arr_delay").alias("route_mean_arr_delay_28d"),
        F.count("*").cast("long").alias("route_flights_28d"),
    )

    weather = inputs.raw("weather", [ds])
    for c in WEATHER_NUMERIC:
        weather = weather.withColumn(c, F.col(c).cast("double"))
    origin_weather = weather.groupBy("origin").agg(
        F.avg("temp").alias("wx_temp_mean"),
        F.avg("humid").alias("wx_humid_mean"),
        F.sum("precip").alias("wx_precip_sum"),
        F.max("wind_speed").alias("wx_wind_speed_max"),
        F.min("visib").alias("wx_visib_min"),
        F.avg("pressure").alias("wx_pressure_mean"),
    )

    planes = inputs.reference("planes").select(
        "tailnum", F.col("year").cast("int").alias("built"), F.col("seats").cast("double").alias("plane_seats"))
    tails = (today.select("tailnum").unionByName(schedule.select("tailnum"))
             .where(F.col("tailnum").isNotNull()).distinct())
    plane_features = tails.join(planes, "tailnum", "left").select(
        "tailnum",
        F.greatest(F.lit(day.year) - F.col("built"), F.lit(0)).cast("double").alias("plane_age"),
        "plane_seats",
    )

    def stamped(df: DataFrame, key: str) -> DataFrame:
        return df.withColumn("event_timestamp", stamp).withColumn("created", stamp).orderBy(key)

    return {
        "curated/flights": flights.orderBy("flight_id"),
        "curated/schedule": schedule.orderBy("flight_id"),
        "features/carrier_stats": stamped(carrier_stats, "carrier"),
        "features/route_stats": stamped(route_stats, "route"),
        "features/origin_weather": stamped(origin_weather, "origin"),
        "features/plane_features": stamped(plane_features, "tailnum"),
    }
