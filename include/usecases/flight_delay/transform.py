"""Spark transform of the flight_delay use case: raw feed of days D -> label table and features.

Runs inside ``spark_jobs/transform.py`` (spark-submit). Time handling, which decides leakage:

* flights are keyed by their scheduled departure hour (``time_hour``, UTC) -> ``event_timestamp``;
* every feature row built from day D is stamped at the end of local day D
  (D+1 00:00 America/New_York, in UTC). A flight departing at t joins the latest row stamped
  <= t, so a flight on day X sees statistics up to X-1 and never its own day's outcomes;
* trailing windows (7 and 28 days) end at D and read only flights dated <= D;
* a plane missing from the ``planes`` reference (or without a year) has a null age: the model
  sees a missing value, never an invented one.

``build(inputs, days)`` builds every day of a range at once (a night is the range of one day);
each output row says its day in ``ds``.
"""

from __future__ import annotations

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


def _trailing(daily: DataFrame, days: list[str], span: int) -> DataFrame:
    """``daily`` (one row per key and ``flight_date``) repeated for every built day D whose
    trailing ``span``-day window holds that date, as column ``ds``; ``age`` = D - flight_date."""
    return (daily.withColumn("d", F.explode(F.sequence("flight_date", F.date_add("flight_date", span - 1))))
            .withColumn("ds", F.date_format("d", "yyyy-MM-dd"))
            .where(F.col("ds").isin(days))
            .withColumn("age", F.datediff("d", "flight_date"))
            .drop("d"))


def _ratio(num: str, den: str) -> Any:
    """num / den as a double, null when den is 0 (a mean over no rows)."""
    return F.when(F.col(den) > 0, F.col(num) / F.col(den)).cast("double")


def build(inputs: Any, days: list[str]) -> dict[str, DataFrame]:
    """Outputs for ``days`` (each row's day in column ``ds``): {"curated/flights",
    "curated/schedule", "features/<table>"}.

    Set-wise: the flights of the days and of the 27 days before the first are read once; each
    day's trailing statistics come from per-day sums (integers, so the result is the same
    whatever the range) rolled over its window.
    """
    day_of = F.to_date("ds")
    stamp = F.to_utc_timestamp(F.date_add(day_of, 1).cast("timestamp"), LOCAL_TZ)

    # A row counts only on the day its delivery is for: a delivery must never bring another day's
    # outcomes into a window (the raw gate rejects off-day rows; this keeps windows closed regardless).
    history = _flight_rows(inputs.raw("flights", days, lookback_days=LOOKBACK_DAYS)).where(
        F.col("flight_date") == day_of)
    history = (
        history.withColumn("cancelled", F.col("arr_delay").isNull())
        .withColumn("is_late", F.when(F.col("cancelled") | (F.col("arr_delay") >= LATE_MINUTES), 1)
                    .otherwise(0).cast("int"))
    )
    today = history.where(F.col("ds").isin(days))
    flights = today.select(*REQUEST, "dep_delay", "arr_delay", "cancelled", "is_late", "ds")

    schedule = _flight_rows(inputs.raw("schedule", days)).select(
        *REQUEST, "ds", F.date_format("flight_date", "yyyy-MM-dd").alias("flight_date"))

    sums = [F.count("*").alias("n"), F.sum("is_late").alias("late"), F.sum("arr_delay").alias("arr_sum"),
            F.count("arr_delay").alias("arr_n"), F.sum(F.col("cancelled").cast("int")).alias("cancelled_n")]

    def rolled(key: str) -> DataFrame:
        daily = history.groupBy(key, "flight_date").agg(*sums)
        return _trailing(daily, days, LOOKBACK_DAYS + 1)

    def week(c: str) -> Any:
        return F.sum(F.when(F.col("age") < 7, F.col(c)).otherwise(0)).alias(f"{c}_7")

    carrier = rolled("carrier").groupBy("ds", "carrier").agg(
        F.sum("n").alias("n_28"), F.sum("late").alias("late_28"),
        week("n"), week("late"), week("arr_sum"), week("arr_n"), week("cancelled_n"))
    # A carrier absent for the last 7 days has no 7-day rate; keep only carriers seen this week.
    carrier_stats = carrier.where(F.col("n_7") > 0).select(
        "ds", "carrier",
        _ratio("late_28", "n_28").alias("carrier_late_rate_28d"),
        _ratio("late_7", "n_7").alias("carrier_late_rate_7d"),
        _ratio("arr_sum_7", "arr_n_7").alias("carrier_mean_arr_delay_7d"),
        F.col("n_7").cast("long").alias("carrier_flights_7d"),
        _ratio("cancelled_n_7", "n_7").alias("carrier_cancel_rate_7d"),
    )

    route_stats = rolled("route").groupBy("ds", "route").agg(
        F.sum("n").alias("n"), F.sum("late").alias("late"), F.sum("arr_sum").alias("arr_sum"),
        F.sum("arr_n").alias("arr_n"),
    ).select("ds", "route", _ratio("late", "n").alias("route_late_rate_28d"),
             _ratio("arr_sum", "arr_n").alias("route_mean_arr_delay_28d"),
             F.col("n").cast("long").alias("route_flights_28d"))

    # Hourly readings are decimals: averaged as exact decimals, the result does not depend on the
    # order Spark adds them in (a day built alone or inside a range gives the same bytes).
    weather = inputs.raw("weather", days)
    for c in WEATHER_NUMERIC:
        weather = weather.withColumn(c, F.col(c).cast("decimal(18,6)"))
    origin_weather = weather.groupBy("ds", "origin").agg(
        F.avg("temp").cast("double").alias("wx_temp_mean"),
        F.avg("humid").cast("double").alias("wx_humid_mean"),
        F.sum("precip").cast("double").alias("wx_precip_sum"),
        F.max("wind_speed").cast("double").alias("wx_wind_speed_max"),
        F.min("visib").cast("double").alias("wx_visib_min"),
        F.avg("pressure").cast("double").alias("wx_pressure_mean"),
    )

    planes = inputs.reference("planes").select(
        "tailnum", F.col("year").cast("int").alias("built"), F.col("seats").cast("double").alias("plane_seats"))
    tails = (today.select("ds", "tailnum").unionByName(schedule.select("ds", "tailnum"))
             .where(F.col("tailnum").isNotNull()).distinct())
    # A tail number missing from planes, or a plane without a year, has an unknown age: null, never
    # 0 (F.greatest would skip the null and call the plane new).
    age = F.year(day_of) - F.col("built")
    plane_features = tails.join(planes, "tailnum", "left").select(
        "ds", "tailnum", F.when(age < 0, F.lit(0)).otherwise(age).cast("double").alias("plane_age"),
        "plane_seats",
    )

    def stamped(df: DataFrame) -> DataFrame:
        return df.withColumn("event_timestamp", stamp).withColumn("created", stamp)

    return {
        "curated/flights": flights,
        "curated/schedule": schedule,
        "features/carrier_stats": stamped(carrier_stats),
        "features/route_stats": stamped(route_stats),
        "features/origin_weather": stamped(origin_weather),
        "features/plane_features": stamped(plane_features),
    }
