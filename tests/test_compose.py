"""compose.yaml and its Dockerfile (Docker does not run here: the files are parsed and checked against the code)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
import yaml

from app.cli import cli
from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def container_env(env: dict, shell: dict[str, str]) -> dict[str, str]:
    """What docker compose puts in the container: ${VAR}, ${VAR:-default}, ${VAR:?error} substituted from ``shell``,
    and a variable without a value passed through from ``shell`` when set there."""
    out = {k: substitute(v, shell) if v is not None else shell.get(k) for k, v in env.items()}
    return {k: v for k, v in out.items() if v is not None}


def substitute(value: str, shell: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if shell.get(name):
            return shell[name]
        if op == ":?":
            raise AssertionError(f"compose would refuse to start: {arg}")
        return arg or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_the_services_their_images_and_healthchecks(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "minio", "createbucket", "api", "worker"}
    assert services["postgres"]["image"] == "postgres:15" and services["redis"]["image"] == "redis:7"
    assert services["minio"]["image"].startswith("minio/minio") and services["createbucket"]["image"].startswith(
        "minio/mc"
    )
    checks = {name: " ".join(s["healthcheck"]["test"]) for name, s in services.items() if "healthcheck" in s}
    assert set(checks) == set(services) - {"createbucket"}  # a one-shot job has no health, it exits
    assert "pg_isready" in checks["postgres"]
    assert "redis-cli ping" in checks["redis"]
    assert "mc ready local" in checks["minio"]
    assert "/readyz" in checks["api"] and "8000" in checks["api"]
    assert "inspect ping" in checks["worker"]
    assert services["api"]["build"] == "." and services["worker"]["image"] == services["api"]["image"]


def test_the_commands_are_options_the_cli_has(compose: dict) -> None:
    services = compose["services"]
    assert services["api"]["command"][:2] == ["rewardsmith", "serve"]
    assert {"--host", "0.0.0.0", "--no-embedded-worker"} <= set(services["api"]["command"])
    assert services["worker"]["command"] == ["rewardsmith", "worker", "--queues", "llm,train"]  # cores / threads
    commands = {c.name: c for c in typer.main.get_command(cli).commands.values()}
    for service in ("api", "worker"):
        argv = services[service]["command"]
        known = {opt for p in commands[argv[1]].params for opt in (*p.opts, *p.secondary_opts)}
        used = {a for a in argv[2:] if a.startswith("--")}
        assert used <= known, f"{service}: {used - known} are not options of `rewardsmith {argv[1]}`"


def test_api_and_worker_share_no_volume_and_dependencies_wait_for_health(compose: dict) -> None:
    services = compose["services"]

    def named_volumes(service: str) -> set[str]:
        return {v.split(":")[0] for v in services[service].get("volumes", [])}

    assert named_volumes("api") == named_volumes("worker") == set()  # only the database, the broker and the bucket
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert named_volumes("minio") == {"miniodata"}
    assert set(compose["volumes"]) == {"pgdata", "redisdata", "miniodata"}
    assert services["api"]["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "createbucket": {"condition": "service_completed_successfully"},
    }
    assert services["worker"]["depends_on"] == {
        "api": {"condition": "service_healthy"},
        "createbucket": {"condition": "service_completed_successfully"},
    }
    assert services["createbucket"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    commented = [
        line.strip() for line in (ROOT / "compose.yaml").read_text().splitlines() if line.strip().startswith("#")
    ]
    assert "# deploy:" in commented  # the GPU reservation block
    assert any(line.replace(" ", "") == "#-driver:nvidia" for line in commented)


def test_the_worker_scales(compose: dict) -> None:
    """`docker compose up --scale worker=3`: nothing in the worker may be fixed to one container."""
    worker = compose["services"]["worker"]
    assert not {"container_name", "ports", "hostname", "volumes"} & set(worker)
    assert "-n" not in worker["command"] and "--hostname" not in worker["command"]  # Celery names it after its host
    assert "$$HOSTNAME" in " ".join(worker["healthcheck"]["test"])  # each pings its own node


def test_the_bucket_is_made_at_start_and_is_the_one_the_service_uses(compose: dict, tmp_path: Path) -> None:
    services = compose["services"]
    env = container_env(compose["services"]["api"]["environment"], {"REWARDSMITH_SECRET_KEY": "k" * 40})
    bucket = env["REWARDSMITH_ARTIFACTS_URL"].removeprefix("s3://").split("/")[0]
    script = " ".join(services["createbucket"]["command"])
    assert services["createbucket"]["entrypoint"] == ["/bin/sh", "-c"] and services["createbucket"]["restart"] == "no"
    assert f"mc mb --ignore-existing store/{bucket}" in script  # idempotent: every `up` runs it
    assert "mc alias set store http://minio:9000" in script
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    minio = container_env(services["minio"]["environment"], {})
    shell = {"MINIO_ROOT_PASSWORD": "s" * 24}
    assert (
        container_env(services["api"]["environment"], {**shell, "REWARDSMITH_SECRET_KEY": "k" * 40})[
            "AWS_SECRET_ACCESS_KEY"
        ]
        == container_env(services["minio"]["environment"], shell)["MINIO_ROOT_PASSWORD"]
    )
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (
        minio["MINIO_ROOT_USER"],
        minio["MINIO_ROOT_PASSWORD"],
    )
    assert "ports" not in services["minio"]  # the store is reached inside the compose network only


def test_the_environment_passes_the_production_settings_checks(compose: dict, tmp_path: Path) -> None:
    shell = {"REWARDSMITH_SECRET_KEY": "k" * 40, "OPENAI_API_KEY": "sk-test"}
    for service in ("api", "worker"):
        env = compose["services"][service]["environment"]
        assert env["REWARDSMITH_ENVIRONMENT"] == "production" and env["REWARDSMITH_DATA_DIR"] == "/data"
        assert env["REWARDSMITH_BROKER_URL"] == "redis://redis:6379/0"
        assert env["REWARDSMITH_ARTIFACTS_URL"] == "s3://rewardsmith/artifacts"
        assert {"OPENAI_API_KEY", "OPENAI_BASE_URL", "REWARDSMITH_LLM_MODEL"} <= set(env)
        values = container_env(env, shell)
        assert "OPENAI_BASE_URL" not in values and values["OPENAI_API_KEY"] == "sk-test"
        assert values["REWARDSMITH_DATABASE_URL"].startswith("postgresql+psycopg://rewardsmith:rewardsmith@postgres:")
        fields = {k.removeprefix("REWARDSMITH_").lower(): v for k, v in values.items() if k.startswith("REWARDSMITH_")}
        aws = {k: v for k, v in values.items() if k.startswith("AWS_")}
        settings = Settings(_env_file=None, **{**fields, **aws, "data_dir": tmp_path})  # raises if production is unsafe
        assert settings.environment == "production" and settings.secret_key == "k" * 40
        assert (settings.artifacts_url, settings.artifacts_endpoint_url) == (
            "s3://rewardsmith/artifacts",
            "http://minio:9000",
        )
    with pytest.raises(AssertionError, match="REWARDSMITH_SECRET_KEY"):
        substitute(compose["services"]["api"]["environment"]["REWARDSMITH_SECRET_KEY"], {})


def test_the_dockerfile_installs_cpu_torch_then_the_project() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    torch = text.index("pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu")
    assert torch < text.index("RUN pip install .\n")
    assert "libegl1" in text and "libgl1" in text
    for package in ("app", "envs", "prompts", "workers"):
        assert f"COPY {package} " in text


def instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (keyword, arguments), continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in joined.splitlines() if ln.strip()]


def test_the_image_runs_as_an_unprivileged_user_that_cannot_change_the_code(compose: dict) -> None:
    """The API, the workers and the sandboxes they start run as a numeric non-root uid (runAsNonRoot can verify a
    number, not a name); everything is installed as root before the switch, so the code is not theirs to change."""
    steps = instructions((ROOT / "Dockerfile").read_text())
    users = [i for i, (keyword, _) in enumerate(steps) if keyword == "USER"]
    assert users, "the image never leaves root"
    last = steps[users[-1]][1].strip()
    uid, _, gid = last.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or (gid.isdigit() and int(gid) > 0)), last
    after = [keyword for keyword, _ in steps[users[-1] + 1 :]]
    assert "RUN" not in after and "COPY" not in after and "ADD" not in after, after
    assert steps[-1][0] == "CMD" and users[-1] < len(steps) - 1
    for keyword, args in steps:
        if keyword in ("COPY", "ADD"):
            assert "--chown" not in args and "--chmod" not in args, args
        if keyword == "RUN" and "chown" in args:
            assert re.findall(r"chown\s+\S+\s+(\S+)", args) == ["/data"], args
    for name in ("api", "worker"):
        assert str(compose["services"][name].get("user", uid)).split(":")[0] not in ("0", "root"), name


def test_the_worker_defaults_to_cores_over_training_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's command names no --concurrency: `rewardsmith worker` then runs cores / REWARDSMITH_TRAIN_THREADS."""
    import app.cli.service as service
    import app.config as config

    monkeypatch.setattr(config, "usable_cores", lambda: 8)
    settings = Settings(_env_file=None, data_dir=tmp_path, train_threads=2, broker_url="redis://redis:6379/0")
    monkeypatch.setattr(service, "get_settings", lambda: settings)
    monkeypatch.setattr(service, "upgrade", lambda url: None)
    seen: list[list[str]] = []
    monkeypatch.setattr(service.os, "execv", lambda exe, argv: seen.append(argv))
    service.worker(queues="llm,train", concurrency=None)
    [argv] = seen
    assert argv[argv.index("-c") + 1] == "4"
