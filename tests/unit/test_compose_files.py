"""docker-compose.yaml, Dockerfile and .env.example stay true to the code.

No Docker engine runs here, so the files are checked statically: they parse; every path they
copy or mount exists; every command they run exists (Airflow, MLflow and ``glideslope``
sub-commands, Spark classes); every ``GLIDESLOPE_*`` variable they set is one the code reads;
every connection the code names is defined; Airflow's environment matches
``production_airflow_env``; no secret is written into them.
"""

from __future__ import annotations

import json
import re
import shlex
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from glideslope.config import PROJECT_ROOT, Settings, list_usecases, load_usecase, settings

pytestmark = pytest.mark.unit

COMPOSE = PROJECT_ROOT / "docker-compose.yaml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
# What `make .env` fills in; compose refuses to start without the passwords and MLflow's key.
DOT_ENV = {"POSTGRES_PASSWORD": "pg-pass", "MINIO_ROOT_PASSWORD": "minio-pass", "AIRFLOW_ADMIN_PASSWORD": "admin",
           "MLFLOW_TRACKING_PASSWORD": "mlflow-pass", "MLFLOW_FLASK_SERVER_SECRET_KEY": "mlflow-key"}
IMAGE_SERVICES = {"airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                  "airflow-triggerer", "airflow-worker", "mlflow", "spark-master", "spark-worker"}
ONE_SHOT = {"airflow-init", "minio-init"}
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${X}, ${X:-default}, ${X-default}, ${X:?err}; $$ is a literal $."""

    def sub(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        val = env.get(name)
        if op in (":-", "-"):
            return arg if (val is None or (op == ":-" and val == "")) else val
        if op in (":?", "?") and (val is None or (op == ":?" and val == "")):
            raise KeyError(f"{name} is required: {arg}")
        return val or ""

    parts = value.split("$$")
    return "$".join(_VAR.sub(sub, p) for p in parts)


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict[str, Any]:
    return compose()["services"]


def common_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every Airflow container gets, as compose would substitute it."""
    raw = compose()["x-airflow-common"]["environment"]
    return {k: interpolate(str(v), DOT_ENV if env is None else env) for k, v in raw.items()}


@cache
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instr, _, args = line.partition(" ")
            out.append((instr.upper(), args.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (instr, _) in enumerate(steps) if instr == "FROM")
    return steps[last_from:]


def code_text() -> str:
    return "\n".join(p.read_text() for p in (PROJECT_ROOT / "include" / "glideslope").rglob("*.py"))


# --- compose ---------------------------------------------------------------------------------------
def test_compose_has_the_production_services_with_health_and_ordering():
    svc = services()
    assert set(svc) >= IMAGE_SERVICES | ONE_SHOT | {"postgres", "redis", "minio", "mailpit"}
    for name, spec in svc.items():
        if name not in ONE_SHOT:
            assert "healthcheck" in spec, f"service {name} has no healthcheck"
        for dep, cond in (spec.get("depends_on") or {}).items():
            assert dep in svc, f"{name} depends on undefined service {dep}"
            assert dep != name, f"{name} depends on itself"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in svc[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"
            else:
                assert cond["condition"] == "service_completed_successfully" and dep in ONE_SHOT, (name, dep)
    # Airflow's components start only after the database is migrated and the secrets exist.
    for name in IMAGE_SERVICES - ONE_SHOT - {"mlflow", "spark-master", "spark-worker"}:
        assert svc[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert svc["airflow-worker"]["environment"]["DUMB_INIT_SETSID"] == "0"


def test_every_published_port_binds_to_loopback_by_default():
    published = [(n, p) for n, s in services().items() for p in s.get("ports", [])]
    assert published, "nothing is published"
    for name, port in published:
        assert interpolate(port, {}).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        assert port.startswith("${GLIDESLOPE_BIND_ADDRESS:-127.0.0.1}:"), port
    host_ports = [interpolate(p, {}).split(":")[1] for _, p in published]
    assert len(host_ports) == len(set(host_ports)), f"a host port is published twice: {host_ports}"


def test_volumes_configs_and_build_context_exist():
    declared = set(compose().get("volumes") or {})
    configs = set(compose().get("configs") or {})
    for name, spec in services().items():
        for vol in spec.get("volumes", []):
            source = vol.split(":")[0]
            if source.startswith((".", "/")):
                assert (PROJECT_ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
            else:
                assert source in declared, f"{name} mounts undeclared volume {source}"
        for cfg in spec.get("configs", []):
            assert cfg["source"] in configs
        if "build" in spec:
            assert (PROJECT_ROOT / spec["build"]["context"] / "Dockerfile").exists()


def _airflow_parser() -> Any:
    from airflow.cli.cli_parser import get_parser

    return get_parser()


def test_every_command_exists():
    from mlflow.cli import server as mlflow_server

    from glideslope.cli import COMMANDS
    from glideslope.k8s import ENTRYPOINT

    spark_home = Path(__import__("pyspark").__file__).parent
    spark_classes = {n for jar in (spark_home / "jars").glob("spark-core_*.jar")
                     for n in zipfile.ZipFile(jar).namelist()}
    parser = _airflow_parser()
    for name in IMAGE_SERVICES:
        spec = services()[name]
        cmd = spec["command"]
        if name == "airflow-init":
            script = interpolate(cmd[0], DOT_ENV).replace("\\\n", " ")
            for line in re.findall(r"^\s*(airflow [^\n]+)", script, re.M):
                args = shlex.split(line.split("||")[0])[1:]
                parser.parse_args(args)  # SystemExit on an unknown sub-command or option
            continue
        cmd = [interpolate(c, DOT_ENV) for c in cmd]
        if cmd[0] == "airflow":
            parser.parse_args(cmd[1:])
        elif cmd[0] == "mlflow":
            assert cmd[1] == "server"
            mlflow_server.make_context("server", cmd[2:])
        elif cmd[0] == "spark-class":
            assert (spark_home / "bin" / "spark-class").exists()
            assert cmd[1].replace(".", "/") + ".class" in spark_classes, cmd[1]
        else:
            pytest.fail(f"{name} runs {cmd[0]!r}, which the image does not provide")
    # The training pod's command and the image's default command are glideslope sub-commands.
    assert ENTRYPOINT[0] == "glideslope" and ENTRYPOINT[1] in COMMANDS
    cmd_line = next(args for instr, args in final_stage() if instr == "CMD")
    assert json.loads(cmd_line)[0] == "glideslope"


def test_glideslope_variables_are_read_by_the_code():
    env = common_env()
    names = [k for k in env if k.startswith("GLIDESLOPE_")]
    assert names
    text = code_text()
    for name in names:
        field = name.removeprefix("GLIDESLOPE_").lower()
        assert field in Settings.model_fields or f'"{name}"' in text, f"{name} is set in compose; no code reads it"
    cfg = settings(env)
    assert cfg.profile == "production"
    assert cfg.lake_root.startswith("s3://") and cfg.s3_endpoint_url == "http://minio:9000"
    assert cfg.feast_online_type == "redis" and cfg.mlflow_tracking_uri == "http://mlflow:5000"


def test_airflow_environment_matches_production_airflow_env():
    from glideslope.runtime import production_airflow_env

    env = common_env()
    expected = production_airflow_env(
        settings(env), database_url="postgresql+psycopg2://airflow:x@postgres/airflow",
        broker_url="redis://redis:6379/0", execution_api_url="http://airflow-apiserver:8080",
        fernet_key="k", jwt_secret="s", spark_master="spark://spark-master:7077")
    deployment_specific = {"AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER", "JAVA_HOME",
                           "GLIDESLOPE_HOME", "AIRFLOW__CELERY__WORKER_CONCURRENCY",
                           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"}
    image_env = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for i, a in final_stage() if i == "ENV")))
    for key, value in expected.items():
        if key in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
            assert f"{key}_CMD" in env and key not in env, f"{key} must come from the generated secret file"
            continue
        assert key in env or key in image_env, f"neither compose nor the image sets {key} (production_airflow_env does)"
        if key.startswith("AIRFLOW_CONN_"):
            assert json.loads(env[key]) == json.loads(value), key
        elif key not in deployment_specific:
            assert env[key] == value, key
    with pytest.raises(ValueError, match="Fernet key and a JWT secret"):
        production_airflow_env(settings(env), database_url="postgresql://x", broker_url="redis://r",
                               execution_api_url="http://a", fernet_key="", jwt_secret="")
    # Paths the image provides (Dockerfile ENV) are the ones compose points Airflow at.
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == image_env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/glideslope/dags"
    assert env["GLIDESLOPE_HOME"] == image_env["GLIDESLOPE_HOME"]


def test_connections_named_in_code_are_defined_in_compose():
    from glideslope.airflow.gpu import KUBERNETES_CONN_ID

    env = common_env()
    named = {settings(env).spark_conn_id, KUBERNETES_CONN_ID}
    for name in list_usecases():
        alerts = load_usecase(name).alerts
        named |= {alerts.smtp_conn_id, alerts.slack_conn_id}
    named |= set(re.findall(r'conn_id\s*[:=][^"\n]*"([a-z][a-z0-9_]*)"', code_text()))
    for conn_id in sorted(named):
        key = f"AIRFLOW_CONN_{conn_id.upper()}"
        assert key in env, f"connection {conn_id!r} is used by the code but compose does not define {key}"
    for key in (k for k in env if k.startswith("AIRFLOW_CONN_")):
        assert "conn_type" in json.loads(env[key]), key
    smtp = json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert smtp["host"] == "mailpit" and "mailpit" in services()


def test_no_secret_is_written_into_the_files():
    secretish = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN", re.I)
    raw = compose()["x-airflow-common"]["environment"]
    for name, spec in {"x-airflow-common": {"environment": raw}, **services()}.items():
        envs = spec.get("environment") or {}
        for key, value in (envs.items() if isinstance(envs, dict) else []):
            if secretish.search(key) and not key.endswith("_CMD"):
                assert re.fullmatch(r"\$\{\w+(:?[-?][^}]*)?\}", str(value)), f"{name}: {key} is not from .env"
    for m in _VAR.finditer(COMPOSE.read_text().replace("$$", "")):
        if secretish.search(m.group(1)):
            assert m.group(2) != ":-" or not m.group(3), f"a default is committed for {m.group(1)}"
    values = dict(re.findall(r"^(\w+)=(.*)$", ENV_EXAMPLE.read_text(), re.M))
    for key, value in values.items():
        if secretish.search(key):
            assert value == "", f".env.example commits a value for {key}"
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().split()
    # Without a Fernet key / JWT secret in .env, airflow-init generates them (once) for every component.
    init = services()["airflow-init"]["command"][0]
    assert "Fernet.generate_key()" in init and "secrets.token_urlsafe" in init


def test_env_example_documents_every_variable():
    documented = set(re.findall(r"^#?\s*(\w+)=", ENV_EXAMPLE.read_text(), re.M))
    used = {m.group(1) for m in _VAR.finditer(COMPOSE.read_text().replace("$$", ""))}  # $$: the container's
    assert not used - documented, f"compose reads variables .env.example does not document: {used - documented}"
    settings_vars = {f"GLIDESLOPE_{f.upper()}" for f in Settings.model_fields}
    assert not settings_vars - documented, f"undocumented settings: {settings_vars - documented}"
    for name in ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AWS_ACCESS_KEY_ID", "MLFLOW_S3_ENDPOINT_URL"):
        assert name in documented


# --- Dockerfile ----------------------------------------------------------------------------------------
def test_dockerfile_copies_existing_paths_and_installs_the_lock():
    steps = dockerfile()
    for instr, args in steps:
        if instr == "COPY" and "--from=" not in args:
            sources = [a for a in args.split() if not a.startswith("--")][:-1]
            for src in sources:
                assert (PROJECT_ROOT / src).exists(), f"Dockerfile copies {src}, which does not exist"
    copied = {a.split()[0] for i, a in steps if i == "COPY" and "--from=" not in a}
    assert {"dags", "plugins", "include", "spark_jobs"} <= copied
    runs = " ".join(a for i, a in steps if i == "RUN")
    assert "uv sync --frozen --no-dev" in runs and "compileall" in runs
    assert "openjdk-17-jre-headless" in runs
    users = [a for i, a in final_stage() if i == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    assert f"--uid {users[-1]}" in runs
    from glideslope.airflow.gpu import IMAGE_UID

    assert int(users[-1]) == IMAGE_UID  # the GPU pod's runAsUser
    python = next(a for i, a in steps if i == "ARG" and a.startswith("PYTHON_VERSION=")).split("=")[1]
    assert f"python{python}/site-packages/pyspark" in DOCKERFILE.read_text()
    assert re.search(r"requires-python = \">=" + re.escape(python), (PROJECT_ROOT / "pyproject.toml").read_text())


def test_s3a_jars_match_the_hadoop_in_pyspark():
    spark_jars = Path(__import__("pyspark").__file__).parent / "jars"
    client = [p.name for p in spark_jars.glob("hadoop-client-api-*.jar")]
    assert len(client) == 1, client
    hadoop = re.search(r"hadoop-client-api-(.+)\.jar", client[0]).group(1)
    args = dict(a.split("=", 1) for i, a in dockerfile() if i == "ARG" and "=" in a)
    assert args["HADOOP_AWS_VERSION"] == hadoop, "hadoop-aws must be the Hadoop version pyspark ships"
    assert "hadoop-aws-${HADOOP_AWS_VERSION}.jar" in DOCKERFILE.read_text()
    assert "bundle-${AWS_SDK_V2_VERSION}.jar" in DOCKERFILE.read_text()


def test_spark_s3a_settings_for_an_s3_lake():
    from glideslope.runtime import spark_s3a_conf

    conf = spark_s3a_conf(settings(common_env()))
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://minio:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert not [k for k in conf if "secret" in k or "access.key" in k]  # credentials come from the environment
    assert spark_s3a_conf(settings({"GLIDESLOPE_PROFILE": "embedded"})) == {}


OBSERVABILITY = PROJECT_ROOT / "include" / "observability"
_METRIC = re.compile(r"\b(glideslope_[a-z_]+|airflow_[a-z_]+)\b")


def _mounts(service: str) -> dict[str, Path]:
    """Container path -> committed file or folder, for the service's bind mounts."""
    out = {}
    for vol in services()[service].get("volumes", []):
        source, target = vol.split(":")[:2]
        if source.startswith("."):
            out[target] = PROJECT_ROOT / source
    return out


def test_prometheus_scrapes_the_plugin_endpoint_and_airflow_statsd():
    from glideslope.airflow.metrics_app import PREFIX

    mounts = _mounts("prometheus")
    prom = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["glideslope"]["metrics_path"] == PREFIX
    assert jobs["glideslope"]["static_configs"][0]["targets"] == ["airflow-apiserver:8080"]
    exporter = services()["statsd-exporter"]
    web = next(a for a in exporter["command"] if a.startswith("--web.listen-address=")).rsplit(":", 1)[1]
    udp = next(a for a in exporter["command"] if a.startswith("--statsd.listen-udp=")).rsplit(":", 1)[1]
    assert jobs["airflow"]["static_configs"][0]["targets"] == [f"statsd-exporter:{web}"]
    env = common_env()
    assert env["AIRFLOW__METRICS__STATSD_ON"] == "True"
    assert (env["AIRFLOW__METRICS__STATSD_HOST"], env["AIRFLOW__METRICS__STATSD_PORT"]) == ("statsd-exporter", udp)
    for rule_file in prom["rule_files"]:
        assert rule_file in mounts, f"prometheus reads {rule_file}, which compose does not mount"


def test_alert_rules_name_exported_metrics():
    from glideslope.gauges import HELP

    rules = yaml.safe_load((OBSERVABILITY / "prometheus" / "alerts.yml").read_text())
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert set(by_name) == {"GlideslopeScoringStale", "GlideslopeEscalationOpen"}
    assert "glideslope_seconds_since_last_scoring" in by_name["GlideslopeScoringStale"]["expr"]
    assert "glideslope_escalation_open" in by_name["GlideslopeEscalationOpen"]["expr"]
    for rule in by_name.values():
        assert set(_METRIC.findall(rule["expr"])) <= set(HELP), rule["expr"]


def test_grafana_dashboard_is_provisioned_and_draws_exported_metrics():
    from glideslope.gauges import HELP

    mounts = _mounts("grafana")
    provisioning = mounts["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "glideslope.yml").read_text())["providers"]
    dashboards = mounts[provider["options"]["path"]]
    dash = json.loads((dashboards / "glideslope.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert {p["datasource"]["uid"] for p in dash["panels"]} == {source["uid"]}
    drawn = {m for e in exprs for m in _METRIC.findall(e)}
    glideslope = {m for m in drawn if m.startswith("glideslope_")}
    assert glideslope <= set(HELP), f"panels draw metrics the endpoint does not export: {glideslope - set(HELP)}"
    assert {"glideslope_champion_live_metric", "glideslope_drift_share", "glideslope_seconds_since_last_scoring",
            "glideslope_escalation_open"} <= glideslope
    assert any(m.startswith("airflow_") for m in drawn), "no panel draws Airflow's own metrics"
