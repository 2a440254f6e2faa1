"""Spark transform of the bike_demand use case: raw feed of day D -> label table and features.

Runs inside the ETL's Spark job (spark-submit or the warm Spark Connect server). Time handling,
which decides leakage:

* an hour is keyed by its local start (``hour_id`` ``YYYYMMDD-HH``, Washington DC time) and its
  ``event_timestamp`` is that start in UTC;
* every feature row built from day D is stamped at the end of local day D (D+1 00:00
  America/New_York, in UTC). An hour of day X joins the latest row stamped <= its start, so it
  sees the rentals up to X-1 and never its own day's counts;
* trailing windows (7 and 28 days) end at D and read only rentals dated <= D.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

LOCAL_TZ = "America/New_York"
LOOKBACK_DAYS = 27  # the longest trailing window is 28 days including D
SYSTEM = "capital_bikeshare"
WEATHER = ["temp", "atemp", "hum", "windspeed"]
REQUEST = ["hour_id", "event_timestamp", "system", "slot", "hour", "workingday", "holiday", "day_of_week",
           "month", "weathersit", *WEATHER]


def _hour(label: Column) -> Column:
    """``12am`` -> 0, ``1am`` -> 1, ... ``12pm`` -> 12, ``11pm`` -> 23."""
    h = F.regexp_extract(label, r"^(\d{1,2})(am|pm)$", 1).cast("int") % 12
    return (h + F.when(F.regexp_extract(label, r"(am|pm)$", 1) == "pm", 12).otherwise(0)).cast("int")


def _hours(df: DataFrame) -> DataFrame:
    """Typed hours with the entity key and the request columns (shared by rentals and forecast)."""
    day = F.to_date("dteday")
    hour = _hour(F.col("hr"))
    local_start = F.to_timestamp(F.concat_ws(" ", F.col("dteday"), F.format_string("%02d:00:00", hour)))
    out = (
        df.withColumn("day", day)
        .withColumn("hour", hour)
        .withColumn("hour_id", F.concat_ws("-", F.date_format(day, "yyyyMMdd"), F.format_string("%02d", hour)))
        .withColumn("event_timestamp", F.to_utc_timestamp(local_start, LOCAL_TZ))
        .withColumn("system", F.lit(SYSTEM))
        .withColumn("workingday", (F.col("workingday") == "Yes").cast("int"))
        .withColumn("holiday", (F.col("holiday") == "Yes").cast("int"))
        .withColumn("slot", F.concat_ws("-", F.col("workingday").cast("string"), F.format_string("%02d", hour)))
        # Spark's dayofweek is 1=Sunday; ISO is 1=Monday. The feed's own weekday is sometimes blank.
        .withColumn("day_of_week", ((F.dayofweek(day) + 5) % 7 + 1).cast("int"))
        .withColumn("month", F.month(day).cast("int"))
        .withColumn("weathersit", F.coalesce(F.col("weathersit"), F.lit("Unknown")))
    )
    for c in WEATHER:
        out = out.withColumn(c, F.col(c).cast("double"))
    return out


def build(inputs: Any, ds: str) -> dict[str, DataFrame]:
    """Outputs for day ``ds``: {"curated/rentals", "curated/forecast", "features/<table>"}."""
    day = date.fromisoformat(ds)
    window_days = [(day - timedelta(days=i)).isoformat() for i in range(LOOKBACK_DAYS, -1, -1)]
    stamp = F.to_utc_timestamp(F.lit((day + timedelta(days=1)).isoformat()).cast("timestamp"), LOCAL_TZ)

    history = _hours(inputs.raw("rentals", window_days))
    for c in ("casual", "registered", "cnt"):
        history = history.withColumn(c, F.col(c).cast("int"))
    # Only the rows of the window's days: a delivery that carried hours of another day is the
    # gate's business, never a reason to count them twice.
    history = history.where(F.col("day").between(F.lit(window_days[0]).cast("date"), F.lit(ds).cast("date")))
    today = history.where(F.col("day") == F.lit(ds).cast("date"))
    rentals = today.select(*REQUEST, "casual", "registered", F.col("cnt").cast("double").alias("cnt"),
                           F.lit(ds).alias("ds"))
    tomorrow = (day + timedelta(days=1)).isoformat()
    forecast = (_hours(inputs.raw("forecast", [ds])).where(F.col("day") == F.lit(tomorrow).cast("date"))
                .select(*REQUEST, F.lit(ds).alias("ds")))

    last7 = history.where(F.col("day") > F.lit((day - timedelta(days=7)).isoformat()).cast("date"))
    slot_7 = last7.groupBy("slot").agg(F.avg("cnt").alias("slot_mean_cnt_7d"))
    slot_28 = history.groupBy("slot").agg(
        F.avg("cnt").alias("slot_mean_cnt_28d"),
        F.expr("percentile_approx(cnt, 0.9)").cast("double").alias("slot_p90_cnt_28d"),
        F.count("*").cast("long").alias("slot_hours_28d"),
    )
    slot_demand = slot_28.join(slot_7, "slot", "left")

    days_7 = last7.groupBy("day").agg(F.sum("cnt").alias("total"), F.sum("casual").alias("casual"))
    daily_demand = (
        days_7.agg(F.avg("total").cast("double").alias("daily_rentals_mean_7d"),
                   (F.sum("casual") / F.sum("total")).cast("double").alias("casual_share_7d"))
        .crossJoin(today.agg(F.sum("cnt").cast("double").alias("rentals_on_day")))
        .withColumn("system", F.lit(SYSTEM))
    )

    def stamped(df: DataFrame, key: str) -> DataFrame:
        return df.withColumn("event_timestamp", stamp).withColumn("created", stamp).orderBy(key)

    return {
        "curated/rentals": rentals.orderBy("hour_id"),
        "curated/forecast": forecast.orderBy("hour_id"),
        "features/slot_demand": stamped(slot_demand, "slot"),
        "features/daily_demand": stamped(daily_demand, "system"),
    }
