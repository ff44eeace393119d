# One image for the explorer (`teelog serve`), the collector (`teelog collect`, which is also
# the log's sequencer) and the key broker (`teelog broker`); the command picks the part.
# Dependencies come from the hash-pinned requirements.lock (uv pip compile --generate-hashes);
# the project itself is installed without resolving anything more.
FROM python:3.11-slim AS build
WORKDIR /src
COPY requirements.lock ./
RUN python -m venv /opt/teelog \
    && /opt/teelog/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY . .
RUN /opt/teelog/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
COPY --from=build /opt/teelog /opt/teelog
RUN useradd --system --uid 10001 --home-dir /var/lib/teelog --create-home teelog
ENV PATH=/opt/teelog/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TEELOG_DATA=/var/lib/teelog
USER teelog
WORKDIR /var/lib/teelog
VOLUME /var/lib/teelog
EXPOSE 8000
# The explorer's health check: 503 once the checkpoint is older than TEELOG_STALE_AFTER.
# The collector and broker services override it in deploy/compose.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["teelog"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
