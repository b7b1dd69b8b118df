# roomcast container image: docs/container.md.
#
#   docker build -t roomcast . && docker run --rm -p 3000:3000 roomcast
#
# Both base images are build arguments so that tools/container-test.sh can build this file with
# podman/buildah from a locally debootstrapped Debian 12 image when no registry is reachable.
ARG BUILD_IMAGE=debian:bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# --- build: the same dependency script and CMake preset as every other build of roomcast --------
FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# The package layer depends on this script only, so it stays cached while the sources change.
COPY tools/install-deps.sh tools/install-deps.sh
RUN tools/install-deps.sh --build
COPY . .
# Static Boost.JSON and hiredis (ROOMCAST_STATIC_BOOST links both): the binary needs only libc,
# libstdc++ and libgcc_s, all in bookworm-slim.
# The debug info of the RelWithDebInfo build is stripped (it is most of the file's size).
RUN cmake --preset release -DROOMCAST_BUILD_TESTS=OFF -DROOMCAST_BUILD_TOOLS=OFF -DROOMCAST_STATIC_BOOST=ON \
 && cmake --build --preset release --target roomcast \
 && strip --strip-unneeded -o /roomcast build/release/src/roomcast \
 && /roomcast --version

# --- runtime: bookworm-slim, one binary, a non-root user --------------------------------------
FROM ${RUNTIME_IMAGE}
RUN groupadd --system --gid 10001 roomcast \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin roomcast
COPY --from=build /roomcast /usr/local/bin/roomcast
# Numeric, so that "runAsNonRoot" checks (Kubernetes) can verify it without reading /etc/passwd.
USER 10001:10001
ENV ROOMCAST_HOST=0.0.0.0 PORT=3000
EXPOSE 3000
# slim has neither curl nor wget, and roomcast has no client mode: bash (essential, so in every
# Debian image) speaks just enough HTTP over /dev/tcp. It follows the port the server uses
# (ROOMCAST_PORT wins over PORT, as in roomcast); a port set with --port needs ROOMCAST_PORT too.
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${ROOMCAST_PORT:-${PORT:-3000}} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r -t 2 status <&3 && [[ $status == HTTP/1.?' 200 '* ]]"]
# SIGTERM drains: clients get close 1001, exit 0 within --drain-timeout (10 s by default, the same
# as "docker stop"'s grace period: use "docker stop -t 15" or a shorter ROOMCAST_DRAIN_TIMEOUT).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/roomcast"]
