"""Entities of flight_delay: the keys feature rows and scores are looked up by."""

from feast import Entity, ValueType

carrier = Entity(name="carrier", join_keys=["carrier"], value_type=ValueType.STRING,
                 description="Two-letter airline code (UA, B6, ...)")
route = Entity(name="route", join_keys=["route"], value_type=ValueType.STRING,
               description="Origin-destination pair, e.g. EWR-IAH")
origin = Entity(name="origin", join_keys=["origin"], value_type=ValueType.STRING,
                description="New York departure airport: EWR, JFK or LGA")
tailnum = Entity(name="tailnum", join_keys=["tailnum"], value_type=ValueType.STRING,
                 description="Aircraft registration; missing for some flights")
flight = Entity(name="flight_id", join_keys=["flight_id"], value_type=ValueType.STRING,
                description="One scheduled flight: YYYYMMDD-CARRIER-FLIGHT-ORIGIN-DEST-HHMM")
