"""Data-quality gates with Great Expectations 1.x, driven by declarative suite files."""

from glideslope.quality.validate import DataQualityError, Failure, ValidationReport

__all__ = ["DataQualityError", "Failure", "ValidationReport"]
