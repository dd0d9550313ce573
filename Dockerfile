# syntax=docker/dockerfile:1

# Build stage: the same release build CI runs (.ci/run).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
# The sign-in pages' templates and stylesheet, compiled into the binary.
COPY templates ./templates
# Cargo.toml names the benchmark target, so its file must be there to read the manifest.
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/introspectd /out/introspectd

# Runtime stage: the binary, an unprivileged user and a data directory. Client ID
# metadata documents are fetched over https and verified against the system's CA
# certificates (registration.ca_file adds to them), so the image carries them.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/introspectd --create-home introspectd \
    && install -d -m 0700 /var/lib/introspectd/data \
    && chown -R introspectd:introspectd /var/lib/introspectd
COPY --from=build /out/introspectd /usr/local/bin/introspectd
WORKDIR /var/lib/introspectd
USER 10001:10001
# Listen on every interface inside the container, the API on 8080 and Prometheus metrics
# on 9464 (publish that one to the scraper's network only); the default SQLite database
# lands in the data volume (sqlite://data/introspectd.db, relative to the working
# directory).
ENV INTROSPECTD_LISTEN=0.0.0.0:8080 \
    INTROSPECTD_METRICS__LISTEN=0.0.0.0:9464
EXPOSE 8080 9464
VOLUME ["/var/lib/introspectd/data"]
# No curl in the image: the binary probes its own /healthz on the configured address.
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["introspectd", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["introspectd"]
CMD ["serve"]
