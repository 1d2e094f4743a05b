# The Wukong manager image: `make docker-build` (context: the repository root).
# The operator module resolves lib/* through its own replace directives
# (../lib/...), so it builds with GOWORK=off; go.work (which also uses test/,
# not in the context) is not needed.
FROM golang:1.26 AS builder
WORKDIR /src
ENV GOWORK=off CGO_ENABLED=0
# Module files first so the download layer is cached across source edits.
COPY lib/apply/go.mod lib/apply/go.sum lib/apply/
COPY lib/conditions/go.mod lib/conditions/go.sum lib/conditions/
COPY lib/kubevirt/go.mod lib/kubevirt/go.sum lib/kubevirt/
COPY lib/network/go.mod lib/network/go.sum lib/network/
COPY lib/storage/go.mod lib/storage/go.sum lib/storage/
COPY operator/go.mod operator/go.sum operator/
# testenv is a test-only requirement of the modules; its go.mod completes the module graph.
COPY testenv/go.mod testenv/go.sum testenv/
RUN cd operator && go mod download
COPY lib/ lib/
COPY operator/ operator/
ARG TARGETOS=linux
ARG TARGETARCH
RUN cd operator && GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/manager ./cmd/manager

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
