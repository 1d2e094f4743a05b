package manager

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMetricsOptions: a configured serving certificate reaches
// controller-runtime's metrics server, and one that is not there (or plain
// HTTP with a certificate) is an error instead of the silent self-signed
// fallback.
func TestMetricsOptions(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"tls.crt", "tls.key", "serving.pem", "serving-key.pem"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600))
	}
	cases := []struct {
		name                  string
		o                     Options
		wantErr               string
		wantDir, wantC, wantK string
	}{
		{name: "self-signed", o: Options{MetricsAddr: ":8443", SecureMetrics: true}},
		{name: "mounted TLS Secret", o: Options{SecureMetrics: true, MetricsCertDir: dir},
			wantDir: dir, wantC: "tls.crt", wantK: "tls.key"},
		{name: "other file names", o: Options{SecureMetrics: true, MetricsCertDir: dir, MetricsCertName: "serving.pem", MetricsKeyName: "serving-key.pem"},
			wantDir: dir, wantC: "serving.pem", wantK: "serving-key.pem"},
		{name: "key missing", o: Options{SecureMetrics: true, MetricsCertDir: dir, MetricsKeyName: "absent.key"},
			wantErr: "absent.key"},
		{name: "directory missing", o: Options{SecureMetrics: true, MetricsCertDir: filepath.Join(dir, "none")},
			wantErr: "metrics serving certificate"},
		{name: "certificate without HTTPS", o: Options{MetricsCertDir: dir}, wantErr: "needs secure metrics"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := metricsOptions(tc.o)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.o.SecureMetrics, got.SecureServing)
			assert.Equal(t, tc.o.SecureMetrics, got.FilterProvider != nil, "authn/authz with HTTPS")
			assert.Equal(t, tc.wantDir, got.CertDir)
			assert.Equal(t, tc.wantC, got.CertName)
			assert.Equal(t, tc.wantK, got.KeyName)
		})
	}
}
