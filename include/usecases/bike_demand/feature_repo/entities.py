"""Entities of bike_demand: the keys feature rows and scores are looked up by."""

from feast import Entity, ValueType

slot = Entity(name="slot", join_keys=["slot"], value_type=ValueType.STRING,
              description="Working day (1) or not (0) and the hour of day: '1-08' is 8am on a working day")
system = Entity(name="system", join_keys=["system"], value_type=ValueType.STRING,
                description="The bike-share system as a whole (capital_bikeshare)")
hour = Entity(name="hour_id", join_keys=["hour_id"], value_type=ValueType.STRING,
              description="One hour of rentals: YYYYMMDD-HH, local (Washington DC) time")
