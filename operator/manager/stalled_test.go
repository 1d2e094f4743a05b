package manager

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/novasphere/wukong/lib/conditions"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
	"github.com/novasphere/wukong/operator/internal/controller"
	"github.com/novasphere/wukong/testenv"
)

// Issue 28 item 6: 20 Wukongs with 16 disks naming a missing StorageClass
// made 320 PVC GETs a minute, forever. These tests count the requests a
// Stalled Wukong makes: few passes (backing off), no live read per disk,
// and a pass at once when the class appears.

const stalledDisks = 16

// TestStalledWukongBacksOff runs the reconciler against a real API server
// over one simulated hour (a fake clock moved by each pass's RequeueAfter),
// counting the requests it sends. A fixed one-minute retry with live reads
// (the behaviour before issue 28) is run the same way for comparison.
func TestStalledWukongBacksOff(t *testing.T) {
	env := startEnv(t)
	// Before issue 28: every minute, each disk's claim read from the API server.
	oldPasses, old := stalledHour(t, env, controller.StalledRetry{Base: time.Minute, Max: time.Minute}, false, "missing-class")
	passes, now := stalledHour(t, env, controller.StalledRetry{}, true, "missing-class")
	t.Logf("one Stalled Wukong with %d disks over one hour: fixed 1m retry with live reads: %d passes, %d requests (%v); "+
		"now: %d passes, %d requests (%v)", stalledDisks, oldPasses, old.total(), old, passes, now.total(), now)

	assert.Equal(t, 60, oldPasses)
	assert.GreaterOrEqual(t, old["get persistentvolumeclaims"], int64(oldPasses*stalledDisks), "the comparison reads each claim every pass")

	assert.LessOrEqual(t, passes, 8, "passes in the first hour (1m doubling to 30m: 0, 1, 2, 4, 8, 16, 32 minutes)")
	assert.Zero(t, now["get persistentvolumeclaims"], "no claim is read from the API server: the class is missing, the cache has none")
	assert.Zero(t, now["get datavolumes"], "no DataVolume is read from the API server")
	assert.LessOrEqual(t, now.total(), int64(2*passes), "at most the status write and one read a pass")
}

// TestStalledWithoutCRDsBacksOff: on a cluster without KubeVirt, CDI and
// Multus, a Wukong with image disks is Stalled (CDINotInstalled) and backs
// off the same way; its passes read no claim of an image disk, and ask
// whether a kind is served (discovery) a few times, not once per disk.
func TestStalledWithoutCRDsBacksOff(t *testing.T) {
	scheme := mustScheme(t)
	env, err := testenv.Start(scheme, filepath.Join("..", "config", "crd"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	mode := storagev1.VolumeBindingImmediate
	require.NoError(t, env.Client.Create(t.Context(), &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "present"}, Provisioner: "csi.example.org", VolumeBindingMode: &mode}))
	passes, got := stalledHour(t, env, controller.StalledRetry{}, true, "present", v1alpha1.ReasonCDIMissing)
	t.Logf("one Wukong Stalled without CDI and KubeVirt (%d disks, half imported) over one hour: %d passes, %d requests (%v)",
		stalledDisks, passes, got.total(), got)
	assert.LessOrEqual(t, passes, 8)
	// The blank disks' claims exist (Wukong's own: from the cache); the
	// image disks' are not read.
	assert.LessOrEqual(t, got["get persistentvolumeclaims"], int64(passes*stalledDisks/2), "only the blank disks' claims are read")
	assert.LessOrEqual(t, got["nonresource"], int64(4*passes), "discovery a few times a pass")
}

// stalledHour creates a Wukong whose disks name class and runs the
// reconciler on it over one simulated hour (a fake clock moved by each
// pass's RequeueAfter) with a cache like the manager's (cached: the
// reconciler's Cache set), counting the requests it sends. The Wukong must
// stay Stalled (reason, default StorageClassNotFound).
func stalledHour(t *testing.T, env *testenv.Env, retry controller.StalledRetry, cached bool, class string, reason ...string) (passes int, got requests) {
	t.Helper()
	ctx := t.Context()
	counter := &requestCounter{}
	cfg := counter.instrument(env.Config)
	scheme := env.Client.Scheme()
	httpClient, err := rest.HTTPClientFor(cfg)
	require.NoError(t, err)
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	require.NoError(t, err)
	byObject := map[client.Object]cache.ByObject{}
	for _, k := range controller.CachedKinds {
		if _, err := mapper.RESTMapping(k.GVK.GroupKind(), k.GVK.Version); err == nil && k.Labelled {
			byObject[k.New()] = cache.ByObject{Label: ManagedSelector}
		}
	}
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme, Mapper: mapper, ByObject: byObject})
	require.NoError(t, err)
	cacheCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = ca.Start(cacheCtx) }()
	require.True(t, ca.WaitForCacheSync(cacheCtx))
	cachedClient, err := client.New(cfg, client.Options{Scheme: scheme, Mapper: mapper, Cache: &client.CacheOptions{Reader: ca}})
	require.NoError(t, err)
	direct, err := client.New(cfg, client.Options{Scheme: scheme, Mapper: mapper})
	require.NoError(t, err)

	clock := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	retry.Now = clock.now
	restore := conditions.Now
	conditions.Now = func() metav1.Time { return metav1.NewTime(clock.now()).Rfc3339Copy() }
	defer func() { conditions.Now = restore }()
	r := &controller.WukongReconciler{
		Client:       FallbackClient{Client: cachedClient, APIReader: direct},
		StalledRetry: retry,
		StatusWrites: controller.StatusWrites{Now: clock.now},
	}
	if cached {
		r.Cache = ca
	}

	w := stalledWukong(t, env, class)
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(w)}
	// Let the cache hold the Wukong before the first pass.
	waitCached(t, env, ca, w)
	before := counter.snapshot()
	start := clock.now()
	for clock.now().Sub(start) < time.Hour {
		res, err := r.Reconcile(ctx, req)
		require.NoError(t, err)
		require.Positive(t, res.RequeueAfter, "a Stalled Wukong is looked at again")
		passes++
		waitCached(t, env, ca, w) // the next pass reads what this one wrote
		clock.add(res.RequeueAfter)
	}
	live := &v1alpha1.Wukong{}
	require.NoError(t, env.Client.Get(ctx, req.NamespacedName, live))
	stalled := conditions.Get(live, v1alpha1.StalledCondition)
	require.NotNil(t, stalled)
	want := v1alpha1.ReasonStorageClassNotFound
	if len(reason) > 0 {
		want = reason[0]
	}
	assert.Equal(t, want, stalled.Reason)
	return passes, counter.snapshot().sub(before)
}

// TestStorageClassWakesStalledWukong runs the manager with a one-hour
// retry: only the StorageClass watch can make the Wukong create its disks
// once the class exists. Its Stalled passes read no claim from the API
// server.
func TestStorageClassWakesStalledWukong(t *testing.T) {
	env := startEnv(t)
	ctx := t.Context()
	counter := &requestCounter{}
	mgr, err := New(counter.instrument(env.Config), Options{MetricsAddr: "0", ProbeAddr: "0", SkipControllerNameValidation: true,
		StalledRetryBase: time.Hour, StalledRetryMax: time.Hour})
	require.NoError(t, err)
	mgrCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() { stop(); require.NoError(t, <-done) })

	w := stalledWukong(t, env, "wake-class")
	key := client.ObjectKeyFromObject(w)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		live := &v1alpha1.Wukong{}
		require.NoError(c, env.Client.Get(ctx, key, live))
		stalled := conditions.Get(live, v1alpha1.StalledCondition)
		require.NotNil(c, stalled)
		assert.Equal(c, v1alpha1.ReasonStorageClassNotFound, stalled.Reason)
		assert.Equal(c, live.Generation, live.Status.ObservedGeneration)
	}, 30*time.Second, 100*time.Millisecond, "the Wukong to be Stalled on the missing class")
	got := counter.snapshot()
	assert.Zero(t, got["get persistentvolumeclaims"], "Stalled passes read no claim from the API server: %v", got)
	assert.Zero(t, got["get datavolumes"], "Stalled passes read no DataVolume from the API server: %v", got)

	mode := storagev1.VolumeBindingImmediate
	require.NoError(t, env.Client.Create(ctx, &storagev1.StorageClass{
		ObjectMeta: metav1.ObjectMeta{Name: "wake-class"}, Provisioner: "csi.example.org", VolumeBindingMode: &mode}))
	// The retry is an hour away: only the watch can do this.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, d := range w.Spec.Disks {
			name := client.ObjectKey{Namespace: w.Namespace, Name: w.Name + "-" + d.Name}
			// Every disk, blank ones too (#30), is a DataVolume.
			assert.NoError(c, env.Client.Get(ctx, name, &cdiv1.DataVolume{}), "disk %s", d.Name)
		}
	}, 30*time.Second, 100*time.Millisecond, "the disks to be created once their StorageClass exists")
}

// startEnv starts an API server with the Wukong and third-party CRDs.
func startEnv(t *testing.T) *testenv.Env {
	t.Helper()
	scheme := mustScheme(t)
	crds, err := testenv.CRDs()
	require.NoError(t, err)
	env, err := testenv.Start(scheme, crds, filepath.Join("..", "config", "crd"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	return env
}

// stalledWukong creates, in a new namespace, a Wukong whose disks (half
// blank, half imported) all name class.
func stalledWukong(t *testing.T, env *testenv.Env, class string) *v1alpha1.Wukong {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "stalled-"}}
	require.NoError(t, env.Client.Create(t.Context(), ns))
	w := &v1alpha1.Wukong{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "vm"},
		Spec: v1alpha1.WukongSpec{CPU: 1, Memory: resource.MustParse("1Gi")}}
	for i := range stalledDisks {
		d := v1alpha1.DiskSpec{Name: fmt.Sprintf("d%d", i), Size: resource.MustParse("1Gi"), StorageClassName: class}
		if i%2 == 1 {
			d.Image = "https://example.org/disk.qcow2"
		}
		w.Spec.Disks = append(w.Spec.Disks, d)
	}
	require.NoError(t, env.Client.Create(t.Context(), w))
	return w
}

// waitCached waits until the cache holds w as the API server has it.
func waitCached(t *testing.T, env *testenv.Env, ca cache.Cache, w *v1alpha1.Wukong) {
	t.Helper()
	live := &v1alpha1.Wukong{}
	require.NoError(t, env.Client.Get(t.Context(), client.ObjectKeyFromObject(w), live))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := &v1alpha1.Wukong{}
		require.NoError(c, ca.Get(t.Context(), client.ObjectKeyFromObject(w), got))
		assert.Equal(c, live.ResourceVersion, got.ResourceVersion)
	}, 10*time.Second, 10*time.Millisecond)
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// requests counts API requests by "verb resource" (verb: get, list, watch,
// create, patch, update, delete).
type requests map[string]int64

func (r requests) sub(before requests) requests {
	out := requests{}
	for k, v := range r {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// total is the requests other than the cache's lists and watches.
func (r requests) total() int64 {
	var n int64
	for k, v := range r {
		if !strings.HasPrefix(k, "list ") && !strings.HasPrefix(k, "watch ") {
			n += v
		}
	}
	return n
}

type requestCounter struct {
	mu  sync.Mutex
	req requests
}

func (c *requestCounter) instrument(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			c.record(req)
			return rt.RoundTrip(req)
		})
	}
	return cfg
}

func (c *requestCounter) record(req *http.Request) {
	key := verbResource(req)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.req == nil {
		c.req = requests{}
	}
	c.req[key]++
}

func (c *requestCounter) snapshot() requests {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.req)
}

// verbResource names a request "verb resource[/subresource]" from its path
// (/api/v1/namespaces/ns/pods/name, /apis/group/version/resource, ...).
func verbResource(req *http.Request) string {
	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	switch {
	case len(parts) >= 2 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 3 && parts[0] == "apis":
		parts = parts[3:]
	default:
		return "nonresource"
	}
	if len(parts) >= 2 && parts[0] == "namespaces" {
		parts = parts[2:]
		if len(parts) == 0 {
			parts = []string{"namespaces", "x"}
		}
	}
	if len(parts) == 0 {
		return "nonresource"
	}
	resource, named := parts[0], len(parts) >= 2
	if len(parts) >= 3 {
		resource += "/" + parts[2]
	}
	verb := map[string]string{http.MethodPost: "create", http.MethodPatch: "patch", http.MethodPut: "update", http.MethodDelete: "delete"}[req.Method]
	if verb == "" {
		switch {
		case named:
			verb = "get"
		case req.URL.Query().Get("watch") == "true":
			verb = "watch"
		default:
			verb = "list"
		}
	}
	return verb + " " + resource
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
