# The image of the worker pool and the bot (the same code; docker-compose.yml picks the command).
# Images are pinned: bump them deliberately.

# --- the MathJax renderer's npm packages ---------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS mathjax
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY worker/render/mathjax/package.json worker/render/mathjax/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- the Python package, as bin/setup installs it (pip install of this project) --------------------
FROM python:3.11.14-slim-bookworm AS build
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY fathom ./fathom
COPY bot ./bot
COPY worker ./worker
COPY simulator ./simulator
COPY cli ./cli
RUN /opt/venv/bin/pip install --no-cache-dir .

# --- what runs ------------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm
# node runs the MathJax renderer (one long-lived process per render worker). fonts-noto-cjk:
# Chinese, Japanese and Korean words inside formulas (`\text{面积}`) are drawn with it
# (worker/render/fonts.py); without it they show as empty boxes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin fathom
COPY --from=build /opt/venv /opt/venv
COPY --from=mathjax /build/node_modules /opt/venv/lib/python3.11/site-packages/worker/render/mathjax/node_modules
WORKDIR /app
# The defaults; docker-compose.yml mounts ./config over it read-only, so a change needs only a
# restart.
COPY config ./config
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FATHOM_CONFIG=/app/config/fathom.toml \
    FATHOM_HTTP_HOST=0.0.0.0
USER fathom
# /metrics and /healthz: the worker pool on 9101, the bot on 9102.
EXPOSE 9101 9102
CMD ["fathom", "--help"]
