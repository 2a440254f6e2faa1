"""Airflow Assets that connect the stages of a use case.

``<uc>.features`` is updated by ``<uc>__etl`` and schedules ``<uc>__features``;
``<uc>.online_features`` is updated by ``<uc>__features`` and schedules ``<uc>__score``;
``<uc>.predictions`` is updated by ``<uc>__score`` and schedules ``<uc>__monitor``;
``<uc>.drift`` is emitted by ``<uc>__monitor`` and schedules ``<uc>__train``;
``<uc>.escalation`` is emitted by ``<uc>__monitor`` when it escalates and schedules ``<uc>__escalation``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Asset


def features_asset(usecase: str) -> Asset:
    from airflow.sdk import Asset

    return Asset(name=f"{usecase}.features", uri=f"glideslope://{usecase}/features", group="glideslope")


def online_features_asset(usecase: str) -> Asset:
    from airflow.sdk import Asset

    return Asset(name=f"{usecase}.online_features", uri=f"glideslope://{usecase}/online_features",
                 group="glideslope")


def drift_asset(usecase: str) -> Asset:
    from airflow.sdk import Asset

    return Asset(name=f"{usecase}.drift", uri=f"glideslope://{usecase}/drift", group="glideslope")


def predictions_asset(usecase: str) -> Asset:
    from airflow.sdk import Asset

    return Asset(name=f"{usecase}.predictions", uri=f"glideslope://{usecase}/predictions", group="glideslope")


def escalation_asset(usecase: str) -> Asset:
    from airflow.sdk import Asset

    return Asset(name=f"{usecase}.escalation", uri=f"glideslope://{usecase}/escalation", group="glideslope")
