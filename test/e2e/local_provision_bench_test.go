package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// provisionRun is what one way of provisioning K Wukongs cost, measured on
// the real local cluster.
type provisionRun struct {
	name string
	// allRunning is from the first create to the last Wukong Running.
	allRunning time.Duration
	// served is what the image server sent (sum of its access log's byte
	// counts for the run's window).
	served int64
	// cpu is the CPU seconds of the pods that moved data (CDI importer,
	// upload and clone pods, the CSI driver's plugin container): the last
	// sample of each container's cAdvisor counter, summed, minus what the
	// long-lived ones had used before the run.
	cpu float64
	// setup, setupServed and setupCPU are the mode's one-time preparation
	// (the catalog's golden import), measured the same way.
	setup       time.Duration
	setupServed int64
	setupCPU    float64
}

// provisionBoot gives one Wukong its boot source (a boot disk, or osImage).
type provisionBoot func(w *v1alpha1.Wukong)

// provisionSource is where the modes take the guest from: the image
// server's URL of the guest disk and the guest's containerDisk image.
type provisionSource struct{ url, containerDisk string }

// provisionMode is one way of provisioning: setup runs once before the
// Wukongs are created, in their namespace, and returns what each gets.
type provisionMode struct {
	name  string
	setup func(t *testing.T, ns string, src provisionSource) provisionBoot
	// floor: the mode moves no image data (its pods may use no CPU).
	floor bool
}

// bootDisk is a provisionBoot giving the Wukong one 3Gi boot disk on the
// benchmark's class, made by mutate.
func bootDisk(mutate func(d *v1alpha1.DiskSpec)) provisionBoot {
	return func(w *v1alpha1.Wukong) {
		d := v1alpha1.DiskSpec{Name: "root", Size: resource.MustParse("3Gi"), Boot: true, StorageClassName: expandableClass}
		mutate(&d)
		w.Spec.Disks = []v1alpha1.DiskSpec{d}
	}
}

// provisionModes are the ways the benchmark compares: (a) every Wukong
// imports the image over http; (b) an administrator's ClusterImage imports
// it once into a golden copy on the same class, and every Wukong's disk is
// a CDI clone of it (issue 32); and, as the floor no way of provisioning
// a disk can beat, (c) every Wukong boots the guest as a containerDisk
// already on the nodes: no DataVolume, no claim, no data to move; only
// the launcher pods, scheduling and K VMs starting on the machine. (c)
// tells how much of (a) and (b) is provisioning the disk and how much is
// starting the VMs.
var provisionModes = []provisionMode{
	{"http-import", func(_ *testing.T, _ string, src provisionSource) provisionBoot {
		return bootDisk(func(d *v1alpha1.DiskSpec) { d.Image = src.url })
	}, false},
	{"catalog-clone", func(t *testing.T, ns string, src provisionSource) provisionBoot {
		label := "bench-" + randSuffix()
		labelNamespace(t, ns, label, "yes")
		img := newClusterImage(t, "bench-"+randSuffix(), label)
		img.Spec.Source, img.Spec.Size = src.url, resource.MustParse("3Gi")
		img.Spec.StorageClassNames = []string{expandableClass}
		create(t, img)
		deadline := time.Now().Add(30 * time.Minute)
		for {
			got := &v1alpha1.ClusterImage{}
			require.NoError(t, k.Get(ctxT(t), types.NamespacedName{Name: img.Name}, got))
			if meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ReadyCondition) {
				t.Logf("ClusterImage %s Ready: %+v", img.Name, got.Status.Copies)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ClusterImage %s not Ready: %+v", img.Name, got.Status)
			}
			time.Sleep(2 * time.Second)
		}
		return bootDisk(func(d *v1alpha1.DiskSpec) { d.ClusterImage = img.Name })
	}, false},
	{"containerdisk-floor", func(_ *testing.T, _ string, src provisionSource) provisionBoot {
		return func(w *v1alpha1.Wukong) { w.Spec.OSImage = src.containerDisk }
	}, true},
}

// TestLocalProvisionBench (issue 32, make bench-provision; skipped unless
// E2E_BENCH_PROVISION=1): K Wukongs (E2E_BENCH_K, default 5) from the
// guest image, once per provisioning mode, one mode after the other, each
// in its own namespace deleted before the next starts. Prints a table:
// time from the first create to all Running, bytes the image server
// served, CPU seconds of the data-moving pods, and each mode's ratio to
// the first. Asserts only that every Wukong ran and the counters moved: no
// test asserts on wall-clock time.
func TestLocalProvisionBench(t *testing.T) {
	if os.Getenv("E2E_BENCH_PROVISION") != "1" {
		t.Skip("E2E_BENCH_PROVISION=1 runs the provisioning benchmark (make bench-provision)")
	}
	src := provisionSource{containerDisk: realKubeVirt(t), url: realCDI(t)}
	needClass(t, expandableClass)
	kCount := 5
	if v := os.Getenv("E2E_BENCH_K"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "E2E_BENCH_K")
		kCount = n
	}
	cs, err := kubernetes.NewForConfig(restConfig)
	require.NoError(t, err)

	var runs []provisionRun
	for _, mode := range provisionModes {
		ns := newNamespace(t)
		run := provisionRun{name: mode.name}
		sampler := startCPUSampler(t, cs)
		start := time.Now()
		boot := mode.setup(t, ns, src)
		run.setup, run.setupCPU = time.Since(start), sampler.stop()
		run.setupServed = imageServerBytes(t, cs, start)
		sampler = startCPUSampler(t, cs)
		start = time.Now()
		var keys []types.NamespacedName
		for i := range kCount {
			w := &v1alpha1.Wukong{}
			w.Namespace, w.Name = ns, fmt.Sprintf("p%d", i)
			w.Spec.CPU = 1
			w.Spec.Memory = resource.MustParse("512Mi")
			boot(w)
			create(t, w)
			keys = append(keys, types.NamespacedName{Namespace: ns, Name: w.Name})
		}
		deadline := time.Now().Add(time.Duration(kCount) * 10 * time.Minute)
		for _, nn := range keys {
			for getWukong(t, k, nn).Status.Phase != v1alpha1.PhaseRunning {
				if time.Now().After(deadline) {
					dumpWukongs(t, ns)
					t.Fatalf("%s: %s not Running", mode.name, nn)
				}
				time.Sleep(2 * time.Second)
			}
		}
		run.allRunning = time.Since(start)
		run.cpu = sampler.stop()
		run.served = imageServerBytes(t, cs, start)
		t.Logf("%s: setup %.1f s (image server sent %d B, %.1f CPU s); %d Wukongs Running after %.1f s; image server sent %d B; data-moving pods used %.1f CPU s",
			mode.name, run.setup.Seconds(), run.setupServed, run.setupCPU, kCount, run.allRunning.Seconds(), run.served, run.cpu)
		if !mode.floor {
			require.Positive(t, run.cpu+run.setupCPU, "%s: the sampler saw the data-moving pods", mode.name)
		}
		runs = append(runs, run)
		for _, nn := range keys {
			require.NoError(t, k.Delete(ctxT(t), getWukong(t, k, nn)))
		}
	}
	// The floor: the last mode that moves no data.
	var floor float64
	for i, m := range provisionModes {
		if m.floor {
			floor = runs[i].allRunning.Seconds()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| mode (K=%d) | one-time setup (s) | all Running (s) | image server sent (MiB) | data-moving CPU (s) | time / %s | time incl. setup / %s | time above the floor (s) | above the floor / %s's |\n|---|---|---|---|---|---|---|---|---|\n",
		kCount, runs[0].name, runs[0].name, runs[0].name)
	base := runs[0].allRunning.Seconds() + runs[0].setup.Seconds()
	for _, r := range runs {
		above, baseAbove := r.allRunning.Seconds()-floor, runs[0].allRunning.Seconds()-floor
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f | %.1f | %.2f |\n", r.name, r.setup.Seconds(), r.allRunning.Seconds(),
			float64(r.served+r.setupServed)/(1<<20), r.cpu+r.setupCPU, r.allRunning.Seconds()/runs[0].allRunning.Seconds(),
			(r.allRunning.Seconds()+r.setup.Seconds())/base, above, above/baseAbove)
	}
	t.Log(b.String())
}

// imageServerLine is one access-log line of hack/image-server: method,
// path, range, status, bytes sent.
var imageServerLine = regexp.MustCompile(` (GET|HEAD) \S+ range="[^"]*" \d+ (\d+)B `)

// imageServerBytes sums the bytes the image server's access log records
// since start (the pod's log with timestamps).
func imageServerBytes(t *testing.T, cs kubernetes.Interface, since time.Time) int64 {
	t.Helper()
	pods := &corev1.PodList{}
	require.NoError(t, k.List(ctxT(t), pods, client.InNamespace("wukong-images"), client.MatchingLabels{"app": "image-server"}))
	var total int64
	for _, p := range pods.Items {
		st := metav1.NewTime(since)
		raw, err := cs.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{SinceTime: &st}).DoRaw(ctxT(t))
		require.NoError(t, err, "image server log")
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		for sc.Scan() {
			if m := imageServerLine.FindStringSubmatch(sc.Text()); m != nil {
				n, _ := strconv.ParseInt(m[2], 10, 64)
				total += n
			}
		}
	}
	return total
}

// cpuSampler reads every node's cAdvisor metrics (the API server's node
// proxy) every two seconds and keeps, per data-moving pod,
// the last container_cpu_usage_seconds_total it saw. A pod's use is its
// last value minus its value before the run (zero for a pod that started
// during it). Pods that come and go within one period are
// missed: the sum is a lower bound.
type cpuSampler struct {
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	baseline map[string]float64
	last     map[string]float64
}

// cadvisorCPU matches a pod's CPU counter (the pod cgroup's series:
// container="", pod set; the local cluster's kubelet reports no
// per-container series, its containerd runs in the node's own namespaces):
// its labels and value.
var cadvisorCPU = regexp.MustCompile(`^container_cpu_usage_seconds_total\{(container="",[^}]*pod="[^"]+"[^}]*)\} ([0-9.e+]+)`)

// cadvisorLabel reads one label of a cAdvisor series.
func cadvisorLabel(labels, name string) string {
	m := regexp.MustCompile(`(?:^|,)` + name + `="([^"]*)"`).FindStringSubmatch(labels)
	if m == nil {
		return ""
	}
	return m[1]
}

// dataMoving says whether a pod moves disk data: CDI's importer, upload
// and clone pods, and our CSI driver's pods (namespace wukong-csi: its
// csi-clone copies).
func dataMoving(ns, pod string) bool {
	return strings.HasPrefix(pod, "importer-") || strings.HasPrefix(pod, "cdi-upload-") ||
		strings.HasSuffix(pod, "-source-pod") || strings.HasPrefix(pod, "cdi-clone") ||
		ns == "wukong-csi"
}

func startCPUSampler(t *testing.T, cs kubernetes.Interface) *cpuSampler {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &cpuSampler{cancel: cancel, done: make(chan struct{}), baseline: map[string]float64{}, last: map[string]float64{}}
	nodes := &corev1.NodeList{}
	require.NoError(t, k.List(ctxT(t), nodes))
	sample := func(into map[string]float64) {
		for _, n := range nodes.Items {
			raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/" + n.Name + "/proxy/metrics/cadvisor").DoRaw(ctx)
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(strings.NewReader(string(raw)))
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			s.mu.Lock()
			for sc.Scan() {
				m := cadvisorCPU.FindStringSubmatch(sc.Text())
				if m == nil || !dataMoving(cadvisorLabel(m[1], "namespace"), cadvisorLabel(m[1], "pod")) {
					continue
				}
				v, err := strconv.ParseFloat(m[2], 64)
				if err == nil {
					into[m[1]] = v
				}
			}
			s.mu.Unlock()
		}
	}
	sample(s.baseline)
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			sample(s.last)
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the CPU seconds used during it.
func (s *cpuSampler) stop() float64 {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum float64
	for id, v := range s.last {
		sum += v - s.baseline[id]
	}
	return sum
}
