FROM python:3.11-slim
# Node runs the MathJax renderer (one long-lived process per render worker); without it the
# workers fall back to matplotlib.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY worker/render/mathjax/package.json worker/render/mathjax/package-lock.json worker/render/mathjax/
RUN cd worker/render/mathjax && npm ci --omit=dev --no-audit --no-fund
COPY pyproject.toml README.md ./
COPY fathom ./fathom
COPY bot ./bot
COPY worker ./worker
COPY simulator ./simulator
COPY config ./config
# Installed in place so config/ and the MathJax folder are found next to the code.
RUN pip install --no-cache-dir -e .
USER nobody
