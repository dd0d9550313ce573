# syntax=docker/dockerfile:1

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/introspectd --create-home introspectd \
    && mkdir -p /var/lib/introspectd/data \
    && chown -R introspectd:introspectd /var/lib/introspectd
COPY --from=build /src/target/release/introspectd /usr/local/bin/introspectd
WORKDIR /var/lib/introspectd
USER introspectd
ENV INTROSPECTD_LISTEN=0.0.0.0:8080
EXPOSE 8080
VOLUME ["/var/lib/introspectd/data"]
ENTRYPOINT ["introspectd"]
CMD ["serve"]
