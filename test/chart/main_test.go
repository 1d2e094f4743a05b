package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/novasphere/wukong/lib/apply/testenv"
	"github.com/novasphere/wukong/operator/manager"
)

// env is the API server of the install and RBAC tests (one per package),
// with the KubeVirt, CDI, Multus and NMState CRDs the manager watches.
var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	scheme, err := manager.NewScheme()
	if err == nil {
		err = apiextensionsv1.AddToScheme(scheme)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	crds, err := realCRDs()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(crds) }()
	env, err = testenv.Start(scheme, crds)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	return m.Run()
}

// realCRDs copies test/crds to a temporary directory with the
// NetworkAttachmentDefinition CRD named as Multus installs it: plural
// network-attachment-definitions (what the operator's RBAC marker names).
// controller-gen, which generates test/crds from the Go types, derives
// networkattachmentdefinitions, and RBAC for the real name would not match.
func realCRDs() (string, error) {
	src, err := testenv.CRDs()
	if err != nil {
		return "", err
	}
	dst, err := os.MkdirTemp("", "chart-crds-")
	if err != nil {
		return "", err
	}
	files, err := filepath.Glob(filepath.Join(src, "*.yaml"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		text := string(b)
		if strings.Contains(text, "kind: NetworkAttachmentDefinition\n") {
			text = strings.NewReplacer(
				"name: networkattachmentdefinitions.k8s.cni.cncf.io", "name: network-attachment-definitions.k8s.cni.cncf.io",
				"plural: networkattachmentdefinitions", "plural: network-attachment-definitions",
				"singular: networkattachmentdefinition", "singular: network-attachment-definition",
			).Replace(text)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), []byte(text), 0o600); err != nil {
			return "", err
		}
	}
	return dst, nil
}
