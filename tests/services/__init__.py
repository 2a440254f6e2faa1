"""Services layer: the production profile's engines over real connections (see conftest.py)."""
