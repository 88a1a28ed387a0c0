# syntax=docker/dockerfile:1
# apikeyd's container image: how to build and run it is in docs/operations.md.
#
#   docker build -t apikeyd .
#   docker run -v apikeyd-data:/data -p 127.0.0.1:8080:8080 apikeyd

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# scripts/build is the one build command: CGO_ENABLED=0 go build -trimpath
# -ldflags='-s -w'. The image test (TestImage) builds with it too.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    ./scripts/build /out/apikeyd
# The data directory, owned by the user the server runs as.
RUN mkdir /out/data

# distroless/static rather than scratch: the binary is static, and this base
# adds just what it still needs from a system, already set up: CA
# certificates (for JWT_JWKS_URL, LEAK_REPORT_KEYS_URL and webhooks over
# https), time zone data, /tmp, and the passwd entry of the non-root user
# 65532 (nonroot). No shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/apikeyd /usr/local/bin/apikeyd
COPY --from=build --chown=65532:65532 /out/data /data
# SQLite by default: the database, and the JWT secret generated beside it,
# live in /data, the only place the server writes; keep it on a volume.
ENV DATABASE_URL=file:/data/apikeyd.db \
    ADDR=0.0.0.0:8080
WORKDIR /data
VOLUME /data
USER 65532:65532
EXPOSE 8080
# No curl in the image: the binary asks its own /healthz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/apikeyd", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/apikeyd"]
CMD ["serve"]
