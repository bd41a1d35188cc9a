FROM python:3.11-slim
# Node runs the MathJax renderer (one long-lived process per render worker); without it the
# workers fall back to matplotlib.
# fonts-noto-cjk: Chinese, Japanese and Korean words inside formulas (`\text{面积}`) are drawn
# with it (worker/render/fonts.py); without it they show as empty boxes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm fonts-noto-cjk \
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
