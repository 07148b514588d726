# Build stage: a release binary with SQLite bundled and libpq linked.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
# The official unit list and the July 2025 conversion table are built into the binary; the
# benches are named in Cargo.toml, which cargo checks when it reads the manifest.
COPY data/vn-admin-units/units-2025-01-04.csv data/vn-admin-units/reorganization-2025-07-01.csv ./data/vn-admin-units/
COPY benches ./benches
RUN cargo build --release --locked

# Runtime stage: the binary and libpq only.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/gocua --create-home gocua
COPY --from=build /src/target/release/gocua /usr/local/bin/gocua
USER gocua
WORKDIR /var/lib/gocua
ENV GOCUA_BIND=0.0.0.0:8080 \
    GOCUA_LOG_FORMAT=json
EXPOSE 8080
# `serve` runs pending migrations before it listens.
ENTRYPOINT ["gocua"]
CMD ["serve"]
