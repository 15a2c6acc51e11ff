# syntax=docker/dockerfile:1
# Image for loadtest: load generator, conformance suite and synthetic feed (compose services feed and loadtest).
# Build from the repository root (the context holds all three modules; only loadtest/ is copied):
#   make docker-loadtest
#   docker build -f deploy/docker/loadtest.Dockerfile --build-arg VERSION=v1.2.3 --build-arg COMMIT=abc1234 -t loadtest:v1.2.3 .

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so a source change does not download modules again.
COPY loadtest/go.mod loadtest/go.sum ./loadtest/
RUN --mount=type=cache,target=/root/go/pkg/mod cd loadtest && GOWORK=off go mod download
COPY loadtest/ ./loadtest/
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
# Exactly the Makefile's build line (GOBUILD), with -o into /out; a deploycheck test holds them equal.
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd loadtest && GOWORK=off CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/loadtest .

# Static binary, no shell, non-root (uid 65532).
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="loadtest" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="https://github.com/adred-codev/ws_poc"
COPY --from=build /out/loadtest /loadtest
USER nonroot:nonroot

ENTRYPOINT ["/loadtest"]
