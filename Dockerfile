# One image for both processes (bot and inference service); the compose file picks the command.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1
# No HF_HUB_OFFLINE here: the service downloads its models on first start (INFERENCE_OFFLINE=1 forbids it), then
# sets it itself before loading them.

RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so code changes don't reinstall torch.
COPY pyproject.toml README.md ./
RUN mkdir -p bot inference feedback storage \
 && touch bot/__init__.py inference/__init__.py feedback/__init__.py storage/__init__.py \
 && pip install . \
 && pip uninstall -y artmatch

COPY bot ./bot
COPY inference ./inference
COPY feedback ./feedback
COPY storage ./storage
RUN pip install --no-deps .

COPY scripts/secrets /usr/local/bin/artmatch-secrets

# Named volumes start as a copy of these folders, so the non-root user owns them.
RUN useradd --create-home --uid 10001 artmatch \
 && mkdir -p /models /run/artmatch-secrets \
 && chown artmatch:artmatch /models /run/artmatch-secrets \
 && chmod 0700 /run/artmatch-secrets
USER artmatch

# Models (downloaded into a volume on first start) and galleries are never baked in: see docker-compose.yml, README.
CMD ["python", "-m", "bot"]
