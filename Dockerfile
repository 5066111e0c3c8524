# The image of the api and the worker services in compose.yaml (one image, two commands).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MUJOCO_GL=egl \
    REWARDSMITH_DATA_DIR=/data

# EGL/GL for off-screen rendering of the policy videos.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libegl1 libgl1 libegl-mesa0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/rewardsmith
# The CPU build of torch first (SB3 PPO on MuJoCo trains faster on CPU cores; see DESIGN.md), so that
# `pip install .` finds it satisfied instead of pulling the CUDA wheels.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY app ./app
COPY envs ./envs
COPY prompts ./prompts
COPY workers ./workers
RUN pip install .

# The API, the workers and their sandboxes run as an unprivileged user with a numeric uid (so that an orchestrator's
# runAsNonRoot can verify it). It owns /data and nothing else: the code and the installed packages stay root's.
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin rewardsmith \
    && mkdir -p /data && chown 10001:10001 /data && chmod 0700 /data
USER 10001:10001
WORKDIR /data
# Each container's own: a worker's scratch, and the artifacts only where REWARDSMITH_ARTIFACTS_URL names no bucket.
VOLUME ["/data"]
EXPOSE 8000

CMD ["rewardsmith", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-embedded-worker"]
