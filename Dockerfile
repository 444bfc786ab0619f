# syntax=docker/dockerfile:1

# cdcq in one image: `cdcq api`, `cdcq worker`, `cdcq migrate`, `cdcq seal`.
# `cdcq dev` is not for this image: it starts PostgreSQL from the system's
# server binaries, which the runtime stage leaves out. compose.yaml runs the
# parts separately against real Kafka and PostgreSQL.

# The build and runtime stages use the same Debian release, so a binary
# linked against glibc (cgo) finds the same glibc at run time.
FROM golang:1.26-trixie AS build
WORKDIR /src
# Modules first, so that source edits do not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags='-s -w' -o /out/cdcq ./cmd/cdcq

FROM debian:trixie-slim
# ca-certificates for TLS to source databases and engines; curl for
# health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/cdcq --create-home \
    --shell /usr/sbin/nologin cdcq
COPY --from=build /out/cdcq /usr/local/bin/cdcq
USER cdcq
WORKDIR /var/lib/cdcq
ENV CDCQ_DATA_DIR=/var/lib/cdcq \
    CDCQ_HTTP_ADDR=0.0.0.0:7000
EXPOSE 7000
ENTRYPOINT ["cdcq"]
CMD ["help"]
