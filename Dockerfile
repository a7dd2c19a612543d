# Centralino: the switch on the bundled configuration.
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && apt-get install -y --no-install-recommends libbcg729-0 espeak-ng sox \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /srv/centralino centralino
WORKDIR /srv/centralino

COPY pyproject.toml README.md ./
COPY sip sip
COPY media media
COPY ivr ivr
COPY acd acd
COPY routing routing
COPY metrics metrics
COPY server server
COPY config config
COPY tools tools
RUN pip install --no-cache-dir . \
    && if [ -f tools/make_prompts.py ]; then python tools/make_prompts.py; fi \
    && mkdir -p /srv/centralino/var && chown -R centralino /srv/centralino/var

USER centralino
# SIP over UDP, the RTP range (even ports RTP, odd RTCP) and the HTTP API.
EXPOSE 5060/udp 20000-30000/udp 8080/tcp
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
# Inside a container the switch must listen on all interfaces, so it refuses to start
# until the demo passwords are changed in the configuration (or your own is mounted)
# and the API has a token: `docker run -e CENTRALINO_HTTP_TOKEN=$(openssl rand -base64 32)`.
# The event log may live in PostgreSQL (`events.dsn`; PGPASSWORD in the environment).
CMD ["centralino", "serve", "--sip", "0.0.0.0:5060", "--http", "0.0.0.0:8080", "--data", "/srv/centralino/var"]
