package storage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestAccessFailure: the importer errors CDI puts in a DataVolume's Running
// condition name the field that fixes them. The texts are CDI's
// (cmd/cdi-importer/importer.go, pkg/importer/http-datasource.go,
// pkg/importer/errors.go ImagePullFailedError) around Go's TLS and
// containers/image's registry errors.
func TestAccessFailure(t *testing.T) {
	tests := []struct {
		name, msg, reason, field string
	}{
		{"http, private CA", `Unable to connect to http data source: HTTP request errored: Get "https://images.corp.example/f.qcow2": tls: failed to verify certificate: x509: certificate signed by unknown authority`,
			ReasonImageUntrusted, "certConfigMap"},
		{"registry, private CA", `Unable to process data: Failed to read registry image: failed to pull image: pinging container registry registry.corp.example: Get "https://registry.corp.example/v2/": tls: failed to verify certificate: x509: certificate signed by unknown authority`,
			ReasonImageUntrusted, "certConfigMap"},
		{"http, login", "Unable to connect to http data source: expected status code 200, got 401. Status: 401 Unauthorized",
			ReasonImageUnauthorized, "secretRef"},
		{"registry, login", "Unable to process data: Failed to read registry image: Error retrieving image: reading manifest 1 in registry.corp.example/guest: unauthorized: authentication required",
			ReasonImageUnauthorized, "secretRef"},
		{"not found is neither", "Unable to connect to http data source: expected status code 200, got 404. Status: 404 Not Found", "", ""},
		{"no such host is neither", `Unable to connect to http data source: Get "https://x.invalid/f": dial tcp: lookup x.invalid: no such host`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, field := accessFailure(tt.msg)
			assert.Equal(t, tt.reason, reason)
			assert.Equal(t, tt.field, field)
			err := observedFailure("root", Observation{Phase: PhaseFailed, Reason: "Error", Message: tt.msg})
			if tt.reason == "" {
				requireStalled(t, err, ReasonImportFailed, "root", "source")
				return
			}
			assert.Equal(t, tt.msg, requireStalled(t, err, tt.reason, "root", tt.field))
		})
	}
}

func TestValidateAccess(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    Disk
		ok   bool
	}{
		{"http with both", Disk{Name: "root", Size: gi("1Gi"), Source: "https://x.example/f", CertConfigMap: "ca", SecretRef: "login"}, true},
		{"registry with a secret", Disk{Name: "root", Size: gi("1Gi"), Source: "registry.example/x:1", SecretRef: "login"}, true},
		{"blank with a CA", Disk{Name: "root", Size: gi("1Gi"), CertConfigMap: "ca"}, false},
		{"clone with a secret", Disk{Name: "root", Size: gi("1Gi"), Clone: &CloneSource{ClaimName: "src"}, SecretRef: "login"}, false},
		{"bad name", Disk{Name: "root", Size: gi("1Gi"), Source: "https://x.example/f", SecretRef: "Not_A_Name"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.d.Validate()
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, ErrInvalidDisk)
		})
	}
}

// TestReconcileImageAccess: a disk's CA ConfigMap and login Secret must be
// there (the Secret with CDI's two keys) before its DataVolume is
// written; they go on the DataVolume's source; changing them before the
// import succeeded writes the DataVolume again.
func TestReconcileImageAccess(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("access", false, false, false)
	disk := Disk{Name: "root", Size: gi("1Gi"), StorageClassName: "access", Source: "https://images.corp.example/f.qcow2",
		CertConfigMap: "corp-ca", SecretRef: "corp-login"}
	noDV := func() {
		t.Helper()
		err := f.c.Get(f.ctx, f.key("root"), &cdiv1.DataVolume{})
		require.True(t, apierrors.IsNotFound(err), "no DataVolume yet: %v", err)
	}

	_, err := f.reconcile(disk)
	msg := requireStalled(t, err, ReasonImageAccessNotFound, "root", "certConfigMap")
	assert.Contains(t, msg, "ConfigMap corp-ca not found")
	noDV()

	require.NoError(t, f.c.Create(f.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "corp-ca"}, Data: map[string]string{"ca.pem": "-----BEGIN CERTIFICATE-----"}}))
	_, err = f.reconcile(disk)
	requireStalled(t, err, ReasonImageAccessNotFound, "root", "secretRef")
	noDV()

	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "corp-login"}, Data: map[string][]byte{SecretKeyAccess: []byte("me")}}
	require.NoError(t, f.c.Create(f.ctx, secret))
	_, err = f.reconcile(disk)
	msg = requireStalled(t, err, ReasonImageAccessNotFound, "root", "secretRef")
	assert.Contains(t, msg, `no key "secretKey"`)
	assert.NotContains(t, msg, "me", "no secret data in the message")
	noDV()

	secret.Data[SecretKeySecret] = []byte("pw")
	require.NoError(t, f.c.Update(f.ctx, secret))
	obs, err := f.reconcile(disk)
	require.NoError(t, err)
	assert.Empty(t, obs[0].Reason)
	dv := f.dv("root")
	require.NotNil(t, dv.Spec.Source.HTTP)
	assert.Equal(t, "corp-ca", dv.Spec.Source.HTTP.CertConfigMap)
	assert.Equal(t, "corp-login", dv.Spec.Source.HTTP.SecretRef)

	// The import fails on the CA; a changed ConfigMap name writes the
	// DataVolume again (CDI refuses spec changes; nothing was imported).
	f.setDVStatus("root", cdiv1.DataVolumeStatus{Phase: cdiv1.ImportInProgress, Conditions: []cdiv1.DataVolumeCondition{{
		Type: cdiv1.DataVolumeRunning, Status: corev1.ConditionFalse, Reason: "Error",
		Message: `Unable to connect to http data source: HTTP request errored: Get "https://images.corp.example/f.qcow2": tls: failed to verify certificate: x509: certificate signed by unknown authority`}}})
	_, err = f.reconcile(disk)
	requireStalled(t, err, ReasonImageUntrusted, "root", "certConfigMap")

	require.NoError(t, f.c.Create(f.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "corp-ca-2"}}))
	disk.CertConfigMap = "corp-ca-2"
	obs, err = f.reconcile(disk)
	require.NoError(t, err)
	assert.Contains(t, obs[0].Message, "written again")
	dv = &cdiv1.DataVolume{}
	err = f.c.Get(f.ctx, f.key("root"), dv)
	if err == nil {
		assert.NotNil(t, dv.DeletionTimestamp, "the DataVolume is being deleted (foreground: its claim first)")
	} else {
		assert.True(t, apierrors.IsNotFound(err), "%v", err)
	}
}

// TestReconcileImageAccessNotNeededOnceImported: a succeeded import needs
// neither object any more, and a registry source gets CDI's pointer
// fields.
func TestReconcileImageAccessNotNeededOnceImported(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("access-done", false, false, false)
	require.NoError(t, f.c.Create(f.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "pull"},
		Data: map[string][]byte{SecretKeyAccess: []byte("u"), SecretKeySecret: []byte("p")}}))
	disk := Disk{Name: "root", Size: gi("1Gi"), StorageClassName: "access-done", Source: "registry.corp.example/guest:1", SecretRef: "pull"}
	_, err := f.reconcile(disk)
	require.NoError(t, err)
	dv := f.dv("root")
	require.NotNil(t, dv.Spec.Source.Registry)
	assert.Equal(t, "pull", deref(dv.Spec.Source.Registry.SecretRef))
	assert.Nil(t, dv.Spec.Source.Registry.CertConfigMap)
	f.setDVStatus("root", cdiv1.DataVolumeStatus{Phase: cdiv1.Succeeded, Progress: "100.0%"})

	require.NoError(t, f.c.Delete(f.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "pull"}}))
	_, err = f.reconcile(disk)
	require.NoError(t, err, "the imported disk needs the Secret no more")
	disk.SecretRef = "other"
	_, err = f.reconcile(disk)
	require.NoError(t, err)
	assert.Nil(t, f.dv("root").DeletionTimestamp, "an imported disk's DataVolume is never written again")
}

// TestReconcileReferenceReader: the objects are read with
// WithReferenceReader's reader, not the client.
func TestReconcileReferenceReader(t *testing.T) {
	f := newFixture(t, env.Client)
	f.class("access-reader", false, false, false)
	disk := Disk{Name: "root", Size: gi("1Gi"), StorageClassName: "access-reader", Source: "https://images.corp.example/f.qcow2", CertConfigMap: "ca"}
	r := &configMapCounter{Reader: f.c}
	_, err := Reconcile(f.ctx, f.c, testID, f.owner, []Disk{disk}, WithReferenceReader(r))
	requireStalled(t, err, ReasonImageAccessNotFound, "root", "certConfigMap")
	assert.Equal(t, 1, r.configMaps)
}

type configMapCounter struct {
	client.Reader
	configMaps int
}

func (r *configMapCounter) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.ConfigMap); ok {
		r.configMaps++
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}
