package kubevirt

import (
	"bytes"
	"regexp"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// pyYAMLImplicit are the implicit resolvers of PyYAML's Resolver (YAML 1.1),
// which cloud-init reads user data and network config with (yaml.safe_load):
// a plain (unquoted) scalar matching one is not read as a string. Copied from
// PyYAML 6.0 lib/yaml/resolver.py (bool, float, int, merge, null,
// timestamp, value), verbose-mode whitespace removed. The Go YAML emitter
// quotes by its own rules, which miss some of these: "=" and "<<" (value and
// merge, which SafeLoader cannot even construct, so cloud-init drops the
// whole document) and floats such as ".1_".
var pyYAMLImplicit = []*regexp.Regexp{
	regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`),
	regexp.MustCompile(`^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`),
	regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`),
	regexp.MustCompile(`^(?:<<)$`),
	regexp.MustCompile(`^(?:~|null|Null|NULL|)$`),
	regexp.MustCompile(`^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$`),
	regexp.MustCompile(`^(?:=)$`),
}

// pyYAMLReadsAsNonString reports whether PyYAML resolves the plain scalar s
// to anything but a string.
func pyYAMLReadsAsNonString(s string) bool {
	for _, re := range pyYAMLImplicit {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// marshalCloudInit marshals v as sigs.k8s.io/yaml does, so that cloud-init
// (PyYAML, YAML 1.1) reads every string of v back as that string: a plain
// string scalar PyYAML would resolve to another type (pyYAMLImplicit) is
// double-quoted. The rare document that has one is re-encoded from its node
// tree (2-space indentation, sequences indented); every other document is
// the sigs.k8s.io/yaml text unchanged.
func marshalCloudInit(v any) ([]byte, error) {
	out, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(out, &doc); err != nil {
		return nil, err
	}
	if !quoteForPyYAML(&doc) {
		return out, nil
	}
	var buf bytes.Buffer
	enc := yamlv3.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// quoteForPyYAML double-quotes every plain string scalar (keys included)
// under n that PyYAML would not read as a string; it reports whether it
// changed any.
func quoteForPyYAML(n *yamlv3.Node) bool {
	changed := false
	// A plain "<<" is a string to sigs.k8s.io/yaml's YAML 1.1 emitter but
	// a merge key to yaml.v3, which would write it back tagged !!merge.
	tag := n.ShortTag()
	if n.Kind == yamlv3.ScalarNode && n.Style == 0 && (tag == "!!str" || tag == "!!merge") && pyYAMLReadsAsNonString(n.Value) {
		n.Tag, n.Style = "!!str", yamlv3.DoubleQuotedStyle
		changed = true
	}
	for _, c := range n.Content {
		if quoteForPyYAML(c) {
			changed = true
		}
	}
	return changed
}
