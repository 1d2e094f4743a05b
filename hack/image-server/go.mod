// image-server: a static file server for the local cluster's guest disk
// (scripts/cdi-build.sh). Standard library only; not part of go.work.
module github.com/novasphere/wukong/hack/image-server

go 1.26.0
