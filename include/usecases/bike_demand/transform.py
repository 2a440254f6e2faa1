"""Spark transform of the bike_demand use case: raw feed of day D -> label table and features.

Runs inside the ETL's Spark job (spark-submit or the warm Spark Connect server). Time handling,
which decides leakage:

* an hour is keyed by its local start (``hour_id`` ``YYYYMMDD-HH``, Washington DC time) and its
  ``event_timestamp`` is that start in UTC;
* every feature row built from day D is stamped at the end of local day D (D+1 00:00
  America/New_York, in UTC). An hour of day X joins the latest row stamped <= its start, so it
  sees the rentals up to X-1 and never its own day's counts;
* trailing windows (7 and 28 days) end at D and read only rentals dated <= D.

``build(inputs, days)`` builds every day of a range at once (a night is the range of one day);
each output row says its day in ``ds``.
"""

from __future__ import annotations

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


def _rolled(df: DataFrame, date_col: str, days: list[str], span: int) -> DataFrame:
    """``df`` repeated for every built day D whose trailing ``span``-day window holds its
    ``date_col``, as column ``ds``; ``age`` = D - that date in days."""
    return (df.withColumn("d", F.explode(F.sequence(date_col, F.date_add(date_col, span - 1))))
            .withColumn("ds", F.date_format("d", "yyyy-MM-dd"))
            .where(F.col("ds").isin(days))
            .withColumn("age", F.datediff("d", date_col))
            .drop("d"))


def build(inputs: Any, days: list[str]) -> dict[str, DataFrame]:
    """Outputs for ``days`` (each row's day in column ``ds``): {"curated/rentals",
    "curated/forecast", "features/<table>"}.

    Set-wise: the rentals of the days and of the 27 days before the first are read once; each
    day's trailing statistics roll the hours (or the daily totals) of its window.
    """
    day_of = F.to_date("ds")
    stamp = F.to_utc_timestamp(F.date_add(day_of, 1).cast("timestamp"), LOCAL_TZ)

    history = _hours(inputs.raw("rentals", days, lookback_days=LOOKBACK_DAYS))
    for c in ("casual", "registered", "cnt"):
        history = history.withColumn(c, F.col(c).cast("int"))
    # Only the hours of the delivery's own day: a delivery that carried hours of another day is the
    # gate's business, never a reason to count them twice.
    history = history.where(F.col("day") == day_of)
    today = history.where(F.col("ds").isin(days))
    rentals = today.select(*REQUEST, "casual", "registered", F.col("cnt").cast("double").alias("cnt"), "ds")
    forecast = (_hours(inputs.raw("forecast", days)).where(F.col("day") == F.date_add(day_of, 1))
                .select(*REQUEST, "ds"))

    window = _rolled(history.drop("ds"), "day", days, LOOKBACK_DAYS + 1)
    last7 = F.col("age") < 7
    # percentile (exact), not percentile_approx: an approximation depends on the order rows
    # arrive in, and a day must be the same bytes built alone or inside a range.
    slot_demand = window.groupBy("ds", "slot").agg(
        F.avg(F.when(last7, F.col("cnt"))).alias("slot_mean_cnt_7d"),
        F.avg("cnt").alias("slot_mean_cnt_28d"),
        F.expr("percentile(cnt, 0.9)").cast("double").alias("slot_p90_cnt_28d"),
        F.count("*").cast("long").alias("slot_hours_28d"),
    )

    totals = history.groupBy("day").agg(F.sum("cnt").alias("total"), F.sum("casual").alias("casual"))
    week = _rolled(totals, "day", days, 7).groupBy("ds").agg(
        F.avg("total").cast("double").alias("daily_rentals_mean_7d"),
        (F.sum("casual") / F.sum("total")).cast("double").alias("casual_share_7d"),
        F.sum(F.when(F.col("age") == 0, F.col("total"))).cast("double").alias("rentals_on_day"),
    )
    every_day = inputs.spark.createDataFrame([(d,) for d in days], "ds string")
    daily_demand = every_day.join(week, "ds", "left").withColumn("system", F.lit(SYSTEM))

    def stamped(df: DataFrame) -> DataFrame:
        return df.withColumn("event_timestamp", stamp).withColumn("created", stamp)

    return {
        "curated/rentals": rentals,
        "curated/forecast": forecast,
        "features/slot_demand": stamped(slot_demand),
        "features/daily_demand": stamped(daily_demand),
    }
