package libnbd

import (
	"errors"
	"testing"
)

// CDI's VDDK source (pkg/importer/vddk-datasource_amd64.go) stops at
// Create's error; nothing else may pretend to work.
func TestCreateFailsClearly(t *testing.T) {
	h, err := Create()
	if h != nil || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Create() = %v, %v; want nil, ErrUnavailable", h, err)
	}
	var l *Libnbd
	if err := l.ConnectUri("nbd+unix://?socket=/tmp/x"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ConnectUri: %v, want ErrUnavailable", err)
	}
	if _, err := l.GetSize(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("GetSize: %v, want ErrUnavailable", err)
	}
	if err := l.BlockStatus(1, 0, nil, &BlockStatusOptargs{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("BlockStatus: %v, want ErrUnavailable", err)
	}
}

// The NBD protocol's values (libnbd's generated bindings): CDI's block
// status code masks extents with them.
func TestProtocolConstants(t *testing.T) {
	if CMD_FLAG_REQ_ONE != 8 || STATE_HOLE != 1 || STATE_ZERO != 2 {
		t.Fatalf("REQ_ONE=%d HOLE=%d ZERO=%d, want 8, 1, 2", CMD_FLAG_REQ_ONE, STATE_HOLE, STATE_ZERO)
	}
}
