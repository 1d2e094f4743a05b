package controller

import (
	"errors"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	"github.com/novasphere/wukong/lib/storage"
	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Metrics are the wukong_* Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	mu      sync.Mutex
	phases  map[types.NamespacedName]v1alpha1.Phase
	objects *prometheus.GaugeVec
	errors  *prometheus.CounterVec
	// imports: the disks of each Wukong with a wukong_import_progress_ratio
	// series, so series of finished imports are deleted.
	imports  map[types.NamespacedName][]string
	progress *prometheus.GaugeVec
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		phases: map[types.NamespacedName]v1alpha1.Phase{},
		objects: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wukong_objects",
			Help: "Wukongs by phase, as last reconciled by this manager.",
		}, []string{"phase"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wukong_reconcile_errors_total",
			Help: "Reconcile passes that ended in a retried error, by reason.",
		}, []string{"reason"}),
		imports: map[types.NamespacedName][]string{},
		progress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wukong_import_progress_ratio",
			Help: "Import progress (0 to 1) of each disk CDI is importing, from status.volumes; " +
				"0 while CDI reports none. The series is removed when the disk leaves phase Importing.",
		}, []string{"namespace", "name", "disk"}),
	}
	m.objects = register(reg, m.objects)
	m.errors = register(reg, m.errors)
	m.progress = register(reg, m.progress)
	return m
}

// register registers c, or returns the collector already registered under
// its name (a second manager in one process, e.g. in tests).
func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(T); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func (m *Metrics) observe(w *v1alpha1.Wukong) {
	if m == nil {
		return
	}
	key := types.NamespacedName{Namespace: w.Namespace, Name: w.Name}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.observeImports(key, w.Status.Volumes)
	if old, ok := m.phases[key]; ok {
		if old == w.Status.Phase {
			return
		}
		m.objects.WithLabelValues(string(old)).Dec()
	}
	m.phases[key] = w.Status.Phase
	m.objects.WithLabelValues(string(w.Status.Phase)).Inc()
}

func (m *Metrics) forget(key types.NamespacedName) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.phases[key]; ok {
		m.objects.WithLabelValues(string(old)).Dec()
		delete(m.phases, key)
	}
	m.observeImports(key, nil)
}

// observeImports sets wukong_import_progress_ratio for the disks in phase
// Importing and deletes the series of the key's other disks. Callers hold mu.
func (m *Metrics) observeImports(key types.NamespacedName, vols []v1alpha1.VolumeStatus) {
	var now []string
	for _, v := range vols {
		if v.Phase != string(storage.PhaseImporting) {
			continue
		}
		p, ok := parsePercent(v.Progress)
		if !ok {
			p = 0
		}
		m.progress.WithLabelValues(key.Namespace, key.Name, v.Name).Set(p / 100)
		now = append(now, v.Name)
	}
	for _, disk := range m.imports[key] {
		if !slices.Contains(now, disk) {
			m.progress.DeleteLabelValues(key.Namespace, key.Name, disk)
		}
	}
	if len(now) == 0 {
		delete(m.imports, key)
		return
	}
	m.imports[key] = now
}

func (m *Metrics) reconcileError(reason string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(reason).Inc()
}
