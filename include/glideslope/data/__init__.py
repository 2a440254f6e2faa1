"""Landing: bring a use case's raw feed for one logical day into the append-only raw zone."""
