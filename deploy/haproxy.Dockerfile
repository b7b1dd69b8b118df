# Debian 12's haproxy (2.6) for deploy/compose.yaml: the same package the tests run, with
# deploy/haproxy.cfg mounted at /etc/haproxy/haproxy.cfg by compose.
ARG RUNTIME_IMAGE=debian:bookworm-slim
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
USER haproxy
# -db: foreground, logs and node state changes on stderr (the container log).
ENTRYPOINT ["haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
