package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kubevirtv1 "kubevirt.io/api/core/v1"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// readyTimeout bounds waitServing.
const readyTimeout = 2 * time.Minute

// waitServing returns once everything the sandbox runs serves as on a
// cluster. It is the sandbox's one readiness check: Start calls it last,
// and only then writes the kubeconfig and returns, so the kubeconfig file
// (what scripts and users wait for), Start's return (the e2e suite, the
// benchmarks, the reliability tests) and cmd/sandbox's ready line all mean
// the same. Serving means:
//
//   - kube-controller-manager, kube-scheduler and the admission servers
//     still run;
//   - the API server calls every webhook configuration the admission
//     servers registered (it loads new configurations asynchronously, each
//     whole): for each one, a server-side dry run of an object its webhook
//     refuses is refused with that webhook's message, or, for KubeVirt's
//     VM mutator, comes back with the defaults it adds (webhookProbes);
//   - the simulators' manager and the operator's (Options.Operator) have
//     started their controllers and synced their caches (the operator's
//     own readyz check).
func (s *Sandbox) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for _, p := range append([]component{{"kube-scheduler", s.sched, s.schedDone}, {"kube-controller-manager", s.kcm, s.kcmDone}}, s.admission...) {
		select {
		case <-p.done:
			out, _ := os.ReadFile(filepath.Join(s.TempDir, p.name+".log"))
			return fmt.Errorf("%s exited: %s", p.name, tail(string(out), 2000))
		default:
		}
	}
	for _, p := range s.webhookProbes() {
		if err := s.probe(ctx, p); err != nil {
			return err
		}
	}
	for _, m := range []*inProcess{s.simulators, s.operator} {
		if m == nil {
			continue
		}
		if err := m.serving(ctx); err != nil {
			return err
		}
	}
	return nil
}

// webhookProbe is a server-side dry run that answers whether the API
// server calls one webhook configuration.
type webhookProbe struct {
	// config is the webhook configuration probed.
	config string
	obj    client.Object
	// served says whether the answer (the object sent back, or the
	// error) came through the configuration's webhook.
	served func(obj client.Object, err error) bool
}

// refusedBy is a probe answer check: the request was refused by webhook
// with a message containing want.
func refusedBy(webhook, want string) func(client.Object, error) bool {
	return func(_ client.Object, err error) bool {
		return err != nil && strings.Contains(err.Error(), `admission webhook "`+webhook+`" denied the request`) &&
			strings.Contains(err.Error(), want)
	}
}

// webhookProbes returns one probe per webhook configuration the running
// admission servers registered (see `kubevirt-admission webhooks` and
// `cdi-admission webhooks`).
func (s *Sandbox) webhookProbes() []webhookProbe {
	var probes []webhookProbe
	for _, c := range s.admission {
		switch c.name {
		case KubeVirtAdmissionBinary:
			// KubeVirt: a VM needs spec.runStrategy (or spec.running).
			noRunStrategy := probeVM()
			noRunStrategy.Spec.RunStrategy = nil
			probes = append(probes, webhookProbe{
				config: "virt-api-validator",
				obj:    noRunStrategy,
				served: refusedBy("virtualmachine-validator.kubevirt.io", "RunStrategy must be specified"),
			}, webhookProbe{
				// The VM mutator gives a new VM a firmware UUID
				// (pkg/virt-api/webhooks/mutating-webhook/mutators/vm-mutator.go).
				config: "virt-api-mutator",
				obj:    probeVM(),
				served: func(obj client.Object, err error) bool {
					fw := obj.(*kubevirtv1.VirtualMachine).Spec.Template.Spec.Domain.Firmware
					return err == nil && fw != nil && fw.UUID != ""
				},
			})
		case CDIAdmissionBinary:
			badURL := probeDV()
			badURL.Spec.Source = &cdiv1.DataVolumeSource{HTTP: &cdiv1.DataVolumeSourceHTTP{URL: "not a url"}}
			// CDI's DataVolume mutator authorizes a clone: it looks up
			// the source's namespace, and refuses when it cannot
			// (pkg/apiserver/webhooks/datavolume-mutate.go).
			cloneFromNowhere := probeDV()
			cloneFromNowhere.Spec.Source = &cdiv1.DataVolumeSource{PVC: &cdiv1.DataVolumeSourcePVC{
				Namespace: "wukong-sandbox-no-such-namespace", Name: "disk",
			}}
			probes = append(probes, webhookProbe{
				config: "cdi-api-datavolume-validate",
				obj:    badURL,
				served: refusedBy("datavolume-validate.cdi.kubevirt.io", "Invalid source URL"),
			}, webhookProbe{
				config: "cdi-api-datavolume-mutate",
				obj:    cloneFromNowhere,
				served: refusedBy("datavolume-mutate.cdi.kubevirt.io", `"wukong-sandbox-no-such-namespace" not found`),
			})
		}
	}
	return probes
}

// probe dry-runs p's object until p.served says the answer came through
// its webhook configuration.
func (s *Sandbox) probe(ctx context.Context, p webhookProbe) error {
	for {
		obj := p.obj.DeepCopyObject().(client.Object)
		err := s.Client.Create(ctx, obj, client.DryRunAll)
		if p.served(obj, err) {
			return nil
		}
		answer := "admitted without its changes"
		if err != nil {
			answer = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the API server does not call the webhooks of %s (probe: %s): %w", p.config, answer, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// probeVM is a valid, halted VirtualMachine in the KubeVirt namespace.
func probeVM() *kubevirtv1.VirtualMachine {
	vm := &kubevirtv1.VirtualMachine{ObjectMeta: metav1.ObjectMeta{Name: "admission-probe", Namespace: KubeVirtNamespace}}
	vm.Spec.RunStrategy = ptr.To(kubevirtv1.RunStrategyHalted)
	vm.Spec.Template = &kubevirtv1.VirtualMachineInstanceTemplateSpec{Spec: kubevirtv1.VirtualMachineInstanceSpec{
		Domain: kubevirtv1.DomainSpec{Memory: &kubevirtv1.Memory{Guest: ptr.To(resource.MustParse("128Mi"))}},
	}}
	return vm
}

// probeDV is a DataVolume of 1Gi in the KubeVirt namespace, without a
// source.
func probeDV() *cdiv1.DataVolume {
	dv := &cdiv1.DataVolume{ObjectMeta: metav1.ObjectMeta{Name: "admission-probe", Namespace: KubeVirtNamespace}}
	dv.Spec.Storage = &cdiv1.StorageSpec{Resources: corev1.VolumeResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
	}}
	return dv
}

// inProcess is a controller-runtime manager the sandbox runs in this
// process: the simulators, the operator.
type inProcess struct {
	name   string
	mgr    ctrl.Manager
	cancel context.CancelFunc
	done   chan struct{}
	// err is why the manager stopped; set before done is closed.
	err error
}

// runInProcess starts mgr. When it stops before Stop asked it to, failed is
// called with why.
func runInProcess(name string, mgr ctrl.Manager, failed func(error)) *inProcess {
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{name: name, mgr: mgr, cancel: cancel, done: make(chan struct{})}
	go func() {
		p.err = mgr.Start(ctx)
		close(p.done)
		if ctx.Err() == nil {
			err := p.err
			if err == nil {
				err = errors.New("returned")
			}
			failed(fmt.Errorf("%s stopped: %w", name, err))
		}
	}()
	return p
}

// serving returns once the manager has started its controllers (without
// leader election, Elected is closed then) and its cache has synced, or
// fails if it stopped.
func (p *inProcess) serving(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	select {
	case <-p.mgr.Elected():
	case <-ctx.Done():
	}
	if ctx.Err() == nil && p.mgr.GetCache().WaitForCacheSync(ctx) {
		return nil
	}
	select {
	case <-p.done:
		return fmt.Errorf("%s stopped: %w", p.name, p.err)
	default:
		return fmt.Errorf("%s not serving: %w", p.name, context.Cause(ctx))
	}
}

// stop stops the manager and waits for it.
func (p *inProcess) stop() error {
	p.cancel()
	<-p.done
	if p.err != nil {
		return fmt.Errorf("%s: %w", p.name, p.err)
	}
	return nil
}

// publishKubeconfig writes the admin kubeconfig to s.KubeconfigPath whole
// (a temporary file in the same directory, then a rename), so that a
// reader never sees part of it.
func (s *Sandbox) publishKubeconfig(kubeconfig []byte) error {
	f, err := os.CreateTemp(filepath.Dir(s.KubeconfigPath), "."+filepath.Base(s.KubeconfigPath)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(kubeconfig)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), s.KubeconfigPath)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	s.published = kubeconfig
	return nil
}

// unpublishKubeconfig removes the kubeconfig publishKubeconfig wrote,
// unless something else has replaced it since.
func (s *Sandbox) unpublishKubeconfig() {
	if s.published == nil {
		return
	}
	if b, err := os.ReadFile(s.KubeconfigPath); err == nil && string(b) == string(s.published) {
		_ = os.Remove(s.KubeconfigPath)
	}
}

// failures records the first in-process manager that stopped on its own.
type failures struct {
	once sync.Once
	done chan struct{}
	err  error
}

func (f *failures) fail(err error) {
	f.once.Do(func() {
		f.err = err
		close(f.done)
	})
}
