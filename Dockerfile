# syntax=docker/dockerfile:1.7
#
# The Glideslope image: one image for every process of the production profile. docker-compose.yaml
# (and the Helm values in docs/production.md) run it as the Airflow API server, scheduler, DAG
# processor, triggerer and Celery workers, the MLflow server, the Spark master and workers, and
# the GPU training pod (`glideslope train ...`, built by glideslope.airflow.gpu).
#
#   docker build -t glideslope:latest --build-arg GIT_COMMIT=$(git rev-parse HEAD) .
#
# What it holds: Python 3.11 with the locked dependencies (uv sync --frozen, bytecode compiled),
# a Java 17 JRE for spark-submit and the Spark daemons, Hadoop's S3A connector in pyspark/jars,
# DuckDB's httpfs extension (the locked duckdb-extension-httpfs wheel, for Feast's offline store
# reading s3://), and the project's dags/, plugins/, include/ and spark_jobs/. It runs as the non-root user 50000 (group 0, as Airflow's
# own image, so platforms that pick a random uid still can write the home).

ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# --- Hadoop's S3A connector for Spark ------------------------------------------------------------
# hadoop-aws must match the hadoop-client jars that pyspark ships (pyspark 4.3.0: Hadoop 3.5.0;
# tests/unit/test_compose_files.py checks this); the AWS SDK v2 bundle is the one that Hadoop line
# is built against. Maven Central is reachable at build time only.
FROM debian:bookworm-slim AS s3a-jars
ARG HADOOP_AWS_VERSION=3.5.0
ARG AWS_SDK_V2_VERSION=2.35.4
ARG MAVEN=https://repo1.maven.org/maven2
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
RUN mkdir /jars && cd /jars \
 && curl -fsSLO "${MAVEN}/org/apache/hadoop/hadoop-aws/${HADOOP_AWS_VERSION}/hadoop-aws-${HADOOP_AWS_VERSION}.jar" \
 && curl -fsSLO "${MAVEN}/software/amazon/awssdk/bundle/${AWS_SDK_V2_VERSION}/bundle-${AWS_SDK_V2_VERSION}.jar"

# --- the locked environment -----------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/glideslope/.venv
WORKDIR /opt/glideslope
# Dependencies first: this layer is rebuilt only when the lock changes, not on every code edit.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project
COPY dags ./dags
COPY plugins ./plugins
COPY include ./include
COPY spark_jobs ./spark_jobs
# The project itself, editable: the library finds include/usecases, dags/ and spark_jobs/ beside it.
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev \
 && .venv/bin/python -m compileall -q -j 0 dags plugins include spark_jobs
COPY --from=s3a-jars /jars/ /opt/glideslope/.venv/lib/python3.11/site-packages/pyspark/jars/

# --- runtime ----------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm
ARG GIT_COMMIT=unknown
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps dumb-init \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /usr/lib/jvm/java-17 \
 && useradd --uid 50000 --gid 0 --home-dir /home/glideslope --create-home --shell /bin/bash glideslope \
 && mkdir -p /opt/airflow/logs /opt/airflow/secrets /opt/airflow/glideslope \
 && chown -R 50000:0 /opt/airflow && chmod -R g+rwX /opt/airflow /home/glideslope

COPY --from=build --chown=50000:0 /opt/glideslope /opt/glideslope

ENV PATH=/opt/glideslope/.venv/bin:$PATH \
    JAVA_HOME=/usr/lib/jvm/java-17 \
    SPARK_HOME=/opt/glideslope/.venv/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=/opt/glideslope/.venv/bin/python \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/glideslope/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/glideslope/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__LOGGING__BASE_LOG_FOLDER=/opt/airflow/logs \
    GLIDESLOPE_PROFILE=production \
    GLIDESLOPE_HOME=/opt/airflow/glideslope \
    GLIDESLOPE_GIT_COMMIT=${GIT_COMMIT} \
    GX_ANALYTICS_ENABLED=false

USER 50000
WORKDIR /opt/glideslope
# httpfs for Feast's offline store on s3:// comes from the locked duckdb-extension-httpfs wheel and
# is installed from that file at run time (glideslope.features.store): nothing is downloaded.
RUN python -c "from glideslope.features.store import httpfs_extension_file as f; print(f())" \
 && glideslope --help >/dev/null && airflow version >/dev/null && java -version

EXPOSE 8080 5000 7077
ENTRYPOINT ["/usr/bin/dumb-init", "--"]
CMD ["glideslope", "--help"]
