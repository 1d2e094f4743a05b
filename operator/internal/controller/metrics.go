package controller

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"

	v1alpha1 "github.com/novasphere/wukong/operator/api/v1alpha1"
)

// Metrics are the wukong_* Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	mu      sync.Mutex
	phases  map[types.NamespacedName]v1alpha1.Phase
	objects *prometheus.GaugeVec
	errors  *prometheus.CounterVec
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
	}
	m.objects = register(reg, m.objects)
	m.errors = register(reg, m.errors)
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
}

func (m *Metrics) reconcileError(reason string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(reason).Inc()
}
