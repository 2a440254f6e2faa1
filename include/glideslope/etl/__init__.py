"""ETL: land raw days, gate them with Great Expectations, transform with Spark, gate and publish."""
