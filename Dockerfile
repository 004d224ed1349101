# One image for both processes (bot and inference service); the compose file picks the command.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

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

RUN useradd --create-home --uid 10001 artmatch
USER artmatch

# Models and galleries are mounted, never baked in: see docker-compose.yml and the README.
CMD ["python", "-m", "bot"]
