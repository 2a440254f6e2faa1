"""Building blocks for a use case's Feast repository modules (``sources.py`` in particular).

A repository declares *what* its features are; where the data lives comes from here, so the
same declarations read the local lake in the embedded profile and S3 in production.
"""

from __future__ import annotations

from pathlib import Path

from feast import FileSource, PushSource
from feast.data_format import ParquetFormat

from glideslope.config import UseCase, load_usecase
from glideslope.lake import Lake


def repo_usecase(module_file: str) -> UseCase:
    """The use case whose feature repository contains ``module_file`` (``<uc>/<repo>/x.py``)."""
    return load_usecase(Path(module_file).resolve().parent.parent.name)


def lake_source(uc: UseCase, table: str) -> FileSource:
    """Batch source over every daily partition of feature table ``table`` in the lake.

    The path is a glob over the partition files: the DuckDB offline store needs a file pattern,
    a bare folder reads as nothing.
    """
    if table not in uc.features.tables:
        raise ValueError(
            f"{uc.folder / 'usecase.yaml'}: feature table {table!r} is not listed in features.tables "
            f"({uc.features.tables})"
        )
    return FileSource(
        name=f"{table}_source",
        path=Lake.for_usecase(uc.name).features_glob(table),
        file_format=ParquetFormat(),
        timestamp_field=uc.event_timestamp,
        created_timestamp_column="created",
        description=f"features/{table} of {uc.name}, one partition per logical day",
    )


def predictions_source(uc: UseCase) -> PushSource:
    """Push source of the precomputed scores; its batch side is the predictions zone of the lake."""
    batch = FileSource(
        name=f"{uc.features.prediction_view}_batch",
        path=f"{Lake.for_usecase(uc.name).predictions()}/ds=*/data.parquet",
        file_format=ParquetFormat(),
        timestamp_field=uc.event_timestamp,
        description=f"predictions of {uc.name}, one partition per scoring night",
    )
    return PushSource(name=f"{uc.features.prediction_view}_push", batch_source=batch,
                      description="Nightly scores pushed by the score stage")
