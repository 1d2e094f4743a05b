package manager

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/testenv"
)

// foreignSecretSize is the size of each foreign Secret's data (#28 measured
// with 700 KB Secrets; the API server takes up to 1 MiB).
const foreignSecretSize = 700 << 10

// maxHeapGrowth is what the manager's heap may grow by while 200 foreign
// Secrets of 700 KB (140 MB) appear in a namespace it watches: far below
// one tenth of what they weigh, so holding even a few of them whole fails.
const maxHeapGrowth = 16 << 20

// TestManagerMemoryIgnoresForeignObjects runs the manager in this process
// against an API server, makes it busy with Wukongs, then has a tenant
// create 100 Secrets of 700 KB without Wukong's label and 100 carrying it
// (managed-by and the owner label of a Wukong, so each one also wakes that
// Wukong). Once the cache has seen every labelled one, the heap (after a
// GC) must not have grown by more than maxHeapGrowth: the cache lists only
// labelled objects, keeps whole only what a Wukong controls and holds the
// rest as metadata stubs; the unlabelled ones reach no informer, and an
// sshKeySecret is read from the API server, not through an informer on
// every Secret. The stubs still work: a labelled foreign sshKeySecret is
// read whole, and a labelled foreign Secret under a Wukong's cloud-init
// name is not adopted.
func TestManagerMemoryIgnoresForeignObjects(t *testing.T) {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	scheme := mustScheme(t)
	crds, err := testenv.CRDs()
	require.NoError(t, err)
	env, err := testenv.Start(scheme, filepath.Join("..", "config", "crd"), crds)
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	c := env.Client

	mgr, err := New(env.Config, Options{MetricsAddr: "0", ProbeAddr: "0", SkipControllerNameValidation: true})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Log(err)
		}
	})
	syncCtx, syncCancel := context.WithTimeout(ctx, 2*time.Minute)
	defer syncCancel()
	require.True(t, mgr.GetCache().WaitForCacheSync(syncCtx))

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tenant-"}}
	require.NoError(t, c.Create(ctx, ns))
	labels := func(wukong string) map[string]string {
		return map[string]string{"app.kubernetes.io/managed-by": "wukong", "vm.novasphere.dev/wukong": wukong}
	}
	// Two real keys (only lines that parse as SSH public keys are copied);
	// both Secrets opt in as sshKeySecrets. The checks look for the keys'
	// base64 blobs: cloud-init's YAML folds the long lines at a space.
	const (
		key         = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHFhLHv9SpOEBPGvn7MMtilaGpYnIZgrp4diTiWvYfG5 tenant@example"
		labelledKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINeWUM1ouD70UOC7hd0OLjA02sHgBQMnT+RNWjbJlaBr tenant@example"
	)
	optIn := map[string]string{v1alpha1.SSHAuthorizedKeysLabel: "true"}
	labelledOptIn := labels("lab")
	labelledOptIn[v1alpha1.SSHAuthorizedKeysLabel] = "true"
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "keys", Labels: optIn}, StringData: map[string]string{"a": key}},
		{ObjectMeta: metav1.ObjectMeta{Name: "labelled-keys", Labels: labelledOptIn}, StringData: map[string]string{"a": labelledKey}},
		{ObjectMeta: metav1.ObjectMeta{Name: "taken-cloudinit", Labels: labels("taken")}, StringData: map[string]string{"userdata": "#cloud-config\n"}},
	} {
		s.Namespace = ns.Name
		require.NoError(t, c.Create(ctx, s))
	}
	wukong := func(name, keys string) *v1alpha1.Wukong {
		return &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: name},
			Spec: v1alpha1.WukongSpec{CPU: 1, Memory: resource.MustParse("1Gi"), OSImage: "quay.io/containerdisks/fedora:40", SSHKeySecret: keys}}
	}
	for _, w := range []*v1alpha1.Wukong{wukong("web", "keys"), wukong("lab", "labelled-keys"), wukong("taken", "")} {
		require.NoError(t, c.Create(ctx, w))
	}
	userData := func(g *assert.CollectT, name string) string {
		s := &corev1.Secret{}
		if !assert.NoError(g, c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: name}, s)) {
			return ""
		}
		return string(s.Data["userdata"])
	}
	stalled := func(g *assert.CollectT, name, reason string) {
		w := &v1alpha1.Wukong{}
		if !assert.NoError(g, c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: name}, w)) {
			return
		}
		for _, cond := range w.Status.Conditions {
			if cond.Type == v1alpha1.StalledCondition && cond.Status == metav1.ConditionTrue {
				assert.Equal(g, reason, cond.Reason, cond.Message)
				return
			}
		}
		assert.Fail(g, "not Stalled", "%s: %+v", name, w.Status.Conditions)
	}
	check := func() {
		require.EventuallyWithT(t, func(g *assert.CollectT) {
			assert.Contains(g, userData(g, "web-cloudinit"), strings.Fields(key)[1], "an sshKeySecret without Wukong's labels is read")
			assert.Contains(g, userData(g, "lab-cloudinit"), strings.Fields(labelledKey)[1], "a labelled foreign sshKeySecret is read whole, not as the cache's stub")
			stalled(g, "taken", v1alpha1.ReasonNameConflict)
		}, time.Minute, 250*time.Millisecond)
		s := &corev1.Secret{}
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: "taken-cloudinit"}, s))
		assert.Empty(t, s.OwnerReferences, "the foreign Secret is not adopted")
		assert.Equal(t, "#cloud-config\n", string(s.Data["userdata"]), "nor written")
	}
	check()

	before := heap()
	data := map[string][]byte{"blob": []byte(strings.Repeat("x", foreignSecretSize))}
	for i := range 100 {
		for _, s := range []*corev1.Secret{
			{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("plain-%d", i)}, Data: data},
			{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("labelled-%d", i), Labels: labels("web")}, Data: data},
		} {
			s.Namespace = ns.Name
			require.NoError(t, c.Create(ctx, s))
		}
	}
	require.EventuallyWithT(t, func(g *assert.CollectT) {
		list := &corev1.SecretList{}
		assert.NoError(g, mgr.GetCache().List(ctx, list, client.InNamespace(ns.Name), client.MatchingLabels(labels("web"))))
		n := 0
		for _, s := range list.Items {
			if strings.HasPrefix(s.Name, "labelled-") {
				n++
			}
		}
		assert.Equal(g, 100, n, "the cache has seen every labelled foreign Secret")
	}, 2*time.Minute, time.Second)
	check()
	after := heap()
	t.Logf("manager process heap before: HeapAlloc %.1f MiB, HeapInuse %.1f MiB; after 100+100 foreign Secrets of %d KB: HeapAlloc %.1f MiB, HeapInuse %.1f MiB (growth %.1f MiB alloc, %.1f MiB inuse)",
		mib(before.HeapAlloc), mib(before.HeapInuse), foreignSecretSize>>10, mib(after.HeapAlloc), mib(after.HeapInuse),
		mib(after.HeapAlloc)-mib(before.HeapAlloc), mib(after.HeapInuse)-mib(before.HeapInuse))
	assert.Less(t, int64(after.HeapAlloc)-int64(before.HeapAlloc), int64(maxHeapGrowth), "HeapAlloc grew with foreign objects")
	assert.Less(t, int64(after.HeapInuse)-int64(before.HeapInuse), int64(maxHeapGrowth), "HeapInuse grew with foreign objects")
}

// heap is the runtime's memory statistics after two collections (the
// second frees what the first's finalizers released).
func heap() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
