module github.com/novasphere/wukong/hack/kubevirt-components/imagetool

// Writes KubeVirt's component images and the guest's containerDisk as
// docker-archive tars from directories on disk (scripts/kubevirt-build.sh).
// A module of its own so that go-containerregistry does not move the
// versions KubeVirt's replace block pins in ../go.mod. Not part of go.work.

go 1.26.0

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
