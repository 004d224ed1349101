# syntax=docker/dockerfile:1
# Three images from one file, each with only what its process imports (pyproject.toml's groups), each installed
# from its lock file (requirements/, made by scripts/lock):
#   docker build --target bot            -t artmatch-bot .             python:3.11-slim, no torch
#   docker build --target inference-cuda -t artmatch-inference-cuda .  CUDA base, PyPI's CUDA torch, faiss-gpu
#   docker build --target inference-cpu  -t artmatch-inference-cpu .   python:3.11-slim, CPU torch, OpenVINO
# docker-compose.yml builds them. All run as uid 10001 and have a HEALTHCHECK. Models (downloaded into a volume on
# first start) and galleries are never baked in. No HF_HUB_OFFLINE here: the service downloads its models on first
# start (INFERENCE_OFFLINE=1 forbids it), then sets it itself before loading them.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# PyPI's Linux torch wheels are built for CUDA 13.0 and carry their own cuBLAS and cuDNN as pip packages, so the
# small `base` flavour (the CUDA runtime and the driver requirement label) is enough: `-cudnn-runtime` would only
# add a second copy. The host driver must support CUDA 13.0 (R580 or newer).
ARG CUDA_IMAGE=nvidia/cuda:13.0.0-base-ubuntu24.04
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

# The project's code, gathered once for every target.
FROM scratch AS source
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY inference ./inference
COPY feedback ./feedback
COPY storage ./storage

FROM ${UV_IMAGE} AS uv

# What every target shares: the user, the folders named volumes start from (so uid 10001 owns them), the two
# small stdlib-only tools the entrypoints and healthchecks call.
FROM ${PYTHON_IMAGE} AS slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 artmatch \
 && mkdir -p /models /data/gallery /run/artmatch-secrets \
 && chown artmatch:artmatch /models /data/gallery /run/artmatch-secrets \
 && chmod 0700 /run/artmatch-secrets
COPY scripts/secrets /usr/local/bin/artmatch-secrets
COPY scripts/healthcheck /usr/local/bin/artmatch-healthcheck
WORKDIR /app

# The bot (and `python -m storage`, `python -m feedback`): aiogram, asyncpg, redis, the metrics server.
FROM slim AS bot
COPY requirements/bot.lock /tmp/
RUN pip install --no-deps --require-hashes -r /tmp/bot.lock && rm /tmp/bot.lock
COPY --from=source /app ./
RUN pip install --no-deps . && pip check
USER artmatch
# GET /healthz of the bot's metrics server (bot/metrics.py): the process's event loop answers. BOT_METRICS_PORT=0
# turns that server off, and with it this check (it then reports healthy without asking).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD artmatch-healthcheck "http://127.0.0.1:${BOT_METRICS_PORT:-9101}/healthz"
ENTRYPOINT ["artmatch-secrets", "--"]
CMD ["python", "-m", "bot"]

# The service on a CPU: PyTorch's CPU-only wheels (requirements/torch-cpu.txt, from PyTorch's index: PyPI's carry
# about 3 GB of CUDA libraries), then everything else from the lock, hashes checked.
FROM slim AS inference-cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*
COPY requirements/torch-cpu.txt requirements/inference-cpu.lock /tmp/
RUN pip install --no-deps -r /tmp/torch-cpu.txt \
 && pip install --no-deps --require-hashes -r /tmp/inference-cpu.lock \
 && rm /tmp/torch-cpu.txt /tmp/inference-cpu.lock
COPY --from=source /app ./
RUN pip install --no-deps . && pip check
USER artmatch
ENV INFERENCE_DEVICE=cpu
EXPOSE 8000
# The first start downloads the models into the volume: allow it time before counting failures.
HEALTHCHECK --interval=10s --timeout=5s --start-period=3600s --retries=6 \
  CMD artmatch-healthcheck http://127.0.0.1:8000/healthz
ENTRYPOINT ["artmatch-secrets", "--"]
CMD ["python", "-m", "inference.serve", "--host", "0.0.0.0", "--port", "8000"]

# The service on an NVIDIA GPU. Python 3.11 comes from uv (a python-build-standalone build, the same on any base),
# into a virtualenv on PATH; the lock brings PyPI's CUDA 13 torch with its CUDA libraries, and faiss-gpu.
FROM ${CUDA_IMAGE} AS inference-cuda
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /usr/local/bin/uv
RUN uv python install 3.11 && uv venv --python 3.11 /opt/venv
COPY requirements/inference-cuda.lock /tmp/
RUN uv pip install --no-deps --require-hashes -r /tmp/inference-cuda.lock && rm /tmp/inference-cuda.lock
RUN useradd --create-home --uid 10001 artmatch \
 && mkdir -p /models /data/gallery /run/artmatch-secrets \
 && chown artmatch:artmatch /models /data/gallery /run/artmatch-secrets \
 && chmod 0700 /run/artmatch-secrets
COPY scripts/secrets /usr/local/bin/artmatch-secrets
COPY scripts/healthcheck /usr/local/bin/artmatch-healthcheck
WORKDIR /app
COPY --from=source /app ./
RUN uv pip install --no-deps . && uv pip check
USER artmatch
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=3600s --retries=6 \
  CMD artmatch-healthcheck http://127.0.0.1:8000/healthz
ENTRYPOINT ["artmatch-secrets", "--"]
CMD ["python", "-m", "inference.serve", "--host", "0.0.0.0", "--port", "8000"]
