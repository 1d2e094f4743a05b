package sandbox

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	cdiv1 "kubevirt.io/containerized-data-importer-api/pkg/apis/core/v1beta1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The sandbox serves KubeVirt's and CDI's own admission code, as virt-api
// and cdi-apiserver do on a cluster: two programs built from
// kubevirt.io/kubevirt (hack/kubevirt-admission) and
// kubevirt.io/containerized-data-importer (hack/cdi-admission) by
// scripts/envtest-assets.sh beside kube-apiserver, run as processes of
// their own and registered with the API server by the webhook
// configurations virt-operator and cdi-operator install (failurePolicy
// Fail), pointing at https://127.0.0.1:<port> with the sandbox's own CA.
const (
	// KubeVirtAdmissionBinary serves KubeVirt's VirtualMachine and
	// VirtualMachineInstance mutating and validating webhooks.
	KubeVirtAdmissionBinary = "kubevirt-admission"
	// CDIAdmissionBinary serves CDI's DataVolume mutating and validating
	// webhooks.
	CDIAdmissionBinary = "cdi-admission"
	// unavailableSuffix names the file scripts/envtest-assets.sh leaves
	// beside a binary it could not build (<binary>.unavailable), holding why.
	unavailableSuffix = ".unavailable"

	// SimulatorUser is the user the simulators act as: virt-controller's
	// service account. KubeVirt's admission trusts it as virt-api does
	// (pkg/virt-api/webhooks/serviceaccounts.go): only KubeVirt's own
	// service accounts may change a VirtualMachineInstance's status
	// (the VMI mutator reverts anyone else's status change, the VMI CRD
	// having no status subresource) or its spec.
	SimulatorUser = "system:serviceaccount:" + KubeVirtNamespace + ":kubevirt-controller"

	// VirtAPIUser is the user KubeVirt's admission server acts as:
	// virt-api's service account (components.ApiServiceAccountName). Its
	// pods/eviction interceptor writes a VMI's status.evacuationNodeName,
	// which KubeVirt's VMI mutator keeps only from KubeVirt's own service
	// accounts, as on a cluster.
	VirtAPIUser = "system:serviceaccount:" + KubeVirtNamespace + ":kubevirt-apiserver"

	admissionReadyTimeout = 2 * time.Minute
	// cdiConfigName is the CDIConfig cdi-operator creates (CDI's
	// pkg/common ConfigName).
	cdiConfigName = "config"
)

// component is a control-plane process the sandbox started and stops.
type component struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// errAdmissionNotBuilt is returned by Start when an admission binary is
// missing and was not found unbuildable.
var errAdmissionNotBuilt = errors.New("admission server not built")

// startAdmission runs KubeVirt's and CDI's admission servers and registers
// their webhooks. Binaries come from assets (see scripts/envtest-assets.sh).
// A binary that is missing fails Start, unless the script recorded that it
// cannot be built here (<binary>.unavailable): then the sandbox runs
// without that server, says so on log and in AdmissionUnavailable, and the
// API server admits what the real system would refuse.
func (s *Sandbox) startAdmission(ctx context.Context, assets string, log io.Writer) error {
	dir := filepath.Join(s.TempDir, "admission")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	caFile, certFile, keyFile, err := writeServingCert(dir)
	if err != nil {
		return fmt.Errorf("creating the admission serving certificate: %w", err)
	}
	for _, name := range []string{KubeVirtAdmissionBinary, CDIAdmissionBinary} {
		bin, unavailable, err := admissionBinary(assets, name)
		if err != nil {
			return err
		}
		if unavailable != "" {
			_, _ = fmt.Fprintln(log, LogPrefix+"WARNING: "+unavailable)
			s.AdmissionUnavailable = append(s.AdmissionUnavailable, unavailable)
			continue
		}
		if name == CDIAdmissionBinary {
			// cdi-operator creates CDIConfig "config"; CDI's DataVolume
			// webhook reads its feature gates (claim adoption).
			if err := s.Client.Create(ctx, &cdiv1.CDIConfig{ObjectMeta: simulatedMeta(cdiConfigName, "")}); err != nil {
				return fmt.Errorf("creating CDIConfig %s: %w", cdiConfigName, err)
			}
		}
		kubeconfig := s.adminKubeconfig
		if name == KubeVirtAdmissionBinary {
			if kubeconfig, err = s.userKubeconfig(VirtAPIUser, dir); err != nil {
				return err
			}
		}
		addrFile := filepath.Join(dir, name+".addr")
		cmd, done, err := s.startComponent(name, bin, "serve",
			"--kubeconfig="+kubeconfig,
			"--tls-cert-file="+certFile,
			"--tls-private-key-file="+keyFile,
			"--listen=127.0.0.1:0",
			"--address-file="+addrFile,
		)
		if cmd != nil {
			s.admission = append(s.admission, component{name, cmd, done})
		}
		if err != nil {
			return err
		}
		addr, err := waitForAddress(ctx, name, addrFile, done, filepath.Join(s.TempDir, name+".log"))
		if err != nil {
			return err
		}
		if name == KubeVirtAdmissionBinary {
			// Registered behind a forwarder a test can take away
			// (SetKubeVirtAdmissionReachable).
			if s.kubevirtForwarder, err = startAdmissionForwarder(addr); err != nil {
				return err
			}
			addr = s.kubevirtForwarder.addr
		}
		if err := s.registerWebhooks(ctx, bin, "https://"+addr, caFile); err != nil {
			return fmt.Errorf("registering the webhooks of %s: %w", name, err)
		}
	}
	return nil
}

// admissionBinary returns the path of the admission server name in assets;
// or, when scripts/envtest-assets.sh recorded that it cannot be built here
// (<name>.unavailable), no path and a message saying so and why; or, when
// neither file is there, an error wrapping errAdmissionNotBuilt.
func admissionBinary(assets, name string) (bin, unavailable string, err error) {
	bin = filepath.Join(assets, name)
	if _, err := os.Stat(bin); err == nil {
		return bin, "", nil
	}
	why, err := os.ReadFile(bin + unavailableSuffix)
	if err != nil {
		return "", "", fmt.Errorf("%w: %s is not in %s; build it with scripts/envtest-assets.sh (from hack/%s)",
			errAdmissionNotBuilt, name, assets, name)
	}
	return "", fmt.Sprintf("%s cannot be built here (%s): the sandbox runs WITHOUT its admission webhooks",
		name, strings.TrimSpace(tail(string(why), 500))), nil
}

// waitForAddress waits until a server wrote its listening address, or
// fails with the end of its log if it exits first.
func waitForAddress(ctx context.Context, name, addrFile string, done chan struct{}, logFile string) (string, error) {
	deadline := time.After(admissionReadyTimeout)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			return string(b), nil
		}
		select {
		case <-done:
			out, _ := os.ReadFile(logFile)
			return "", fmt.Errorf("%s exited: %s", name, tail(string(out), 2000))
		case <-deadline:
			out, _ := os.ReadFile(logFile)
			return "", fmt.Errorf("%s not serving after %s: %s", name, admissionReadyTimeout, tail(string(out), 2000))
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// registerWebhooks creates the webhook configurations `<bin> webhooks`
// prints (the operator's own, pointed at url).
func (s *Sandbox) registerWebhooks(ctx context.Context, bin, url, caFile string) error {
	var stdout, stderr bytes.Buffer
	// #nosec G204 -- the binary comes from the envtest assets dir.
	cmd := exec.CommandContext(ctx, bin, "webhooks", "--url="+url, "--ca-file="+caFile)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s webhooks: %w: %s", filepath.Base(bin), err, stderr.String())
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(&stdout, 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(u.Object) == 0 {
			continue
		}
		if err := s.Client.Create(ctx, u); err != nil {
			return fmt.Errorf("creating %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
}

// simulatorConfig is a REST config for SimulatorUser (in system:masters,
// so RBAC allows everything, as the real controllers' roles do for what
// they touch).
func (s *Sandbox) simulatorConfig() (*rest.Config, error) {
	u, err := s.env.AddUser(envtest.User{
		Name:   SimulatorUser,
		Groups: []string{"system:masters", "system:serviceaccounts", "system:serviceaccounts:" + KubeVirtNamespace},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding the simulator user: %w", err)
	}
	cfg := u.Config()
	cfg.QPS, cfg.Burst = s.Config.QPS, s.Config.Burst
	return cfg, nil
}

// userKubeconfig writes a kubeconfig for name (in system:masters and
// KubeVirt's service account groups) into dir and returns its path.
func (s *Sandbox) userKubeconfig(name, dir string) (string, error) {
	u, err := s.env.AddUser(envtest.User{
		Name:   name,
		Groups: []string{"system:masters", "system:serviceaccounts", "system:serviceaccounts:" + KubeVirtNamespace},
	}, nil)
	if err != nil {
		return "", fmt.Errorf("adding user %s: %w", name, err)
	}
	b, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, strings.ReplaceAll(name, ":", "_")+".kubeconfig")
	return path, os.WriteFile(path, b, 0o600)
}

// writeServingCert writes a self-signed CA and a serving certificate for
// 127.0.0.1 and localhost signed by it (ServingCert) into dir, returning
// the CA, certificate and key file names.
func writeServingCert(dir string) (caFile, certFile, keyFile string, err error) {
	caPEM, certPEM, keyPEM, err := ServingCert("wukong-sandbox-admission", []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"})
	if err != nil {
		return "", "", "", err
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for _, f := range []struct {
		path string
		pem  []byte
	}{{caFile, caPEM}, {certFile, certPEM}, {keyFile, keyPEM}} {
		if err := os.WriteFile(f.path, f.pem, 0o600); err != nil {
			return "", "", "", err
		}
	}
	return caFile, certFile, keyFile, nil
}

// ServingCert makes a new CA (CommonName name+"-ca") and a TLS serving
// certificate for ips and dnsNames signed by it: ECDSA P-256, valid from an
// hour ago for a year. It returns PEM: the CA's certificate (what a client
// trusts), the serving certificate and its EC private key.
func ServingCert(name string, ips []net.IP, dnsNames []string) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + "-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  ips,
		DNSNames:     dnsNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	encode := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	return encode("CERTIFICATE", caDER), encode("CERTIFICATE", der), encode("EC PRIVATE KEY", keyDER), nil
}
