FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY fathom ./fathom
COPY bot ./bot
COPY worker ./worker
COPY simulator ./simulator
COPY config ./config
RUN pip install --no-cache-dir .
ENV FATHOM_CONFIG=/app/config/fathom.toml
USER nobody
