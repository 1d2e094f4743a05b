package sandbox

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdmissionBinary: a built server is used; one the build script could
// not build runs the sandbox without it, saying why; a missing one without
// that record fails Start naming the script.
func TestAdmissionBinary(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, KubeVirtAdmissionBinary), []byte("#!/bin/sh\n"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, CDIAdmissionBinary+unavailableSuffix), []byte("go: module lookup disabled\n"), 0o600))

	bin, unavailable, err := admissionBinary(dir, KubeVirtAdmissionBinary)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, KubeVirtAdmissionBinary), bin)
	assert.Empty(t, unavailable)

	bin, unavailable, err = admissionBinary(dir, CDIAdmissionBinary)
	require.NoError(t, err)
	assert.Empty(t, bin)
	assert.Equal(t, "cdi-admission cannot be built here (go: module lookup disabled): the sandbox runs WITHOUT its admission webhooks", unavailable)

	_, _, err = admissionBinary(t.TempDir(), KubeVirtAdmissionBinary)
	require.Error(t, err)
	assert.True(t, errors.Is(err, errAdmissionNotBuilt))
	assert.Contains(t, err.Error(), "build it with scripts/envtest-assets.sh (from hack/kubevirt-admission)")
}

// TestServingCert: the serving certificate verifies against the CA for
// 127.0.0.1, the address the webhook configurations name.
func TestServingCert(t *testing.T) {
	caFile, certFile, keyFile, err := writeServingCert(t.TempDir())
	require.NoError(t, err)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)
	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(caPEM))
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	require.NoError(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "10.0.0.1"})
	assert.Error(t, err, "valid only for the loopback address")
}
