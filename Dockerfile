# The Flagship image for docker-compose.yml: the API (`python -m api`), the worker
# (`python worker.py`) and the migrations (`python -m db upgrade`) all run from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The dependencies first, from pyproject.toml alone, so a code change reuses this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /app flagship \
    && mkdir -p /data \
    && chown flagship /data

# Not root; /data (DATA_DIR) is where the first start writes credentials.json.
USER flagship
EXPOSE 8000
CMD ["python", "-m", "api"]
