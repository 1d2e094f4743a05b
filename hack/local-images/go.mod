module github.com/novasphere/wukong/hack/local-images

// Builds the local cluster's images without Docker (the images step of
// scripts/local-cluster/): cmd/pause is the sandbox container, cmd/mkimage
// writes docker-archive tars with go-containerregistry. Not part of go.work.

go 1.26.0

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
