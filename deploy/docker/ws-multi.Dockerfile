# syntax=docker/dockerfile:1
# Image for ws-multi: the sharded variant (GOMAXPROCS from the cgroup quota).
# Build from the repository root (the context holds all three modules; only ws-multi/ is copied):
#   make docker-multi
#   docker build -f deploy/docker/ws-multi.Dockerfile --build-arg VERSION=v1.2.3 --build-arg COMMIT=abc1234 -t ws-multi:v1.2.3 .

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not download modules again.
COPY ws-multi/go.mod ws-multi/go.sum ./ws-multi/
RUN --mount=type=cache,target=/root/go/pkg/mod cd ws-multi && GOWORK=off go mod download
COPY ws-multi/ ./ws-multi/
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
# Exactly the Makefile's build line (GOBUILD), with -o into /out; a deploycheck test holds them equal.
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd ws-multi && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/ws-multi .

# Static binary, no shell, non-root (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="ws-multi" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="https://github.com/adred-codev/ws_poc"
COPY --from=build /out/ws-multi /ws-multi
USER nonroot:nonroot
EXPOSE 3002
# The binary checks itself: distroless has no shell, curl or wget.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/ws-multi", "healthcheck"]
ENTRYPOINT ["/ws-multi"]
