// Package dashboard checks the chart's Grafana dashboard
// (charts/wukong/dashboards/wukong.json) against the metrics the manager
// registers. It is a package of its own so its manager does not share a
// process with test/chart's.
package dashboard

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/novasphere/wukong/operator/manager"
	"github.com/novasphere/wukong/testenv"
)

// env is an API server with the Wukong CRD, which manager.New needs.
var env *testenv.Env

// root is the repository root.
var root string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if root, err = testenv.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	scheme, err := manager.NewScheme()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env, err = testenv.Start(scheme, filepath.Join(root, "operator", "config", "crd"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	return m.Run()
}

// dashboard is the part of Grafana's dashboard JSON model the test reads.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query string `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Title      string `json:"title"`
		Type       string `json:"type"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboardMetrics: the dashboard JSON parses, every panel queries the
// templated Prometheus data source, and every metric its PromQL names is one
// the manager registers (wukong_* and controller-runtime's), read from the
// metrics registry after building a manager.
func TestDashboardMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "charts", "wukong", "dashboards", "wukong.json"))
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d))
	assert.Equal(t, "wukong-operator", d.UID)
	require.Len(t, d.Templating.List, 1)
	assert.Equal(t, "datasource", d.Templating.List[0].Type)
	assert.Equal(t, "prometheus", d.Templating.List[0].Query)

	exported := exportedMetrics(t)
	for _, name := range []string{"wukong_objects", "wukong_reconcile_errors_total", "wukong_import_progress_ratio"} {
		require.Contains(t, exported, name, "the registry read misses a metric the manager registers")
	}

	used := map[string]bool{}
	ids := map[int]bool{}
	require.GreaterOrEqual(t, len(d.Panels), 6)
	for _, p := range d.Panels {
		assert.False(t, ids[p.ID], "panel id %d repeats", p.ID)
		ids[p.ID] = true
		assert.Equal(t, "${datasource}", p.Datasource.UID, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, target := range p.Targets {
			names, err := metricNames(target.Expr)
			require.NoError(t, err, "panel %q: %s", p.Title, target.Expr)
			require.NotEmpty(t, names, "panel %q: no metric in %s", p.Title, target.Expr)
			for _, n := range names {
				assert.True(t, isExported(exported, n), "panel %q queries %s, which the manager does not export", p.Title, n)
				used[n] = true
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, n := range []string{
		"wukong_objects",                                   // Wukongs by phase
		"controller_runtime_reconcile_total",               // reconcile rate
		"controller_runtime_reconcile_time_seconds_bucket", // reconcile latency
		"wukong_reconcile_errors_total",                    // errors by reason
		"wukong_import_progress_ratio",                     // import progress
	} {
		assert.True(t, used[n], "no panel queries %s", n)
	}
}

// exportedMetrics builds a manager (which registers the wukong_* metrics
// with controller-runtime's registry, beside controller-runtime's own) and
// returns the names of the metrics the registry describes. It runs in this
// package's own test binary: controller-runtime refuses a second controller
// named wukong in one process, and test/chart runs the manager too.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	_, err := manager.New(env.Config, manager.Options{MetricsAddr: "0", ProbeAddr: "0"})
	require.NoError(t, err)
	reg, ok := metrics.Registry.(prometheus.Collector)
	require.True(t, ok, "controller-runtime's registry is a %T", metrics.Registry)
	ch := make(chan *prometheus.Desc)
	go func() { reg.Describe(ch); close(ch) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for desc := range ch {
		m := fqName.FindStringSubmatch(desc.String())
		require.NotNil(t, m, "unexpected Desc format %s", desc)
		names[m[1]] = true
	}
	return names
}

// isExported: name is registered, or is the _bucket, _sum or _count series
// of a registered histogram or summary.
func isExported(exported map[string]bool, name string) bool {
	if exported[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] {
			return true
		}
	}
	return false
}

func TestMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`sum by (phase) (wukong_objects)`, []string{"wukong_objects"}},
		{`sum(rate(a_total{controller="wukong", result=~"err.*"}[$__rate_interval])) by (result)`, []string{"a_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket{name="w"}[5m])))`, []string{"x_bucket"}},
		{`count(y) or vector(0)`, []string{"y"}},
		{`a / on (namespace) group_left (name) b offset 5m`, []string{"a", "b"}},
		{`{__name__="via_matcher", job="x"}`, []string{"via_matcher"}},
		{`max without (instance) (m) > bool 0.5`, []string{"m"}},
	}
	for _, tc := range cases {
		got, err := metricNames(tc.expr)
		require.NoError(t, err, tc.expr)
		assert.Equal(t, tc.want, got, tc.expr)
	}
	for _, bad := range []string{`sum(x`, `x{a="b"`, `rate(x[5m)`, `x{a="b}`} {
		_, err := metricNames(bad)
		assert.Error(t, err, bad)
	}
}

// promqlWords are PromQL's aggregation operators and keywords
// (https://prometheus.io/docs/prometheus/latest/querying/operators/); any
// other identifier not followed by "(" is a metric name.
var promqlWords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "offset": true, "and": true, "or": true, "unless": true, "atan2": true,
	"inf": true, "nan": true,
}

// labelLists are the keywords followed by a parenthesised list of labels.
var labelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

var nameMatcher = regexp.MustCompile(`__name__\s*=\s*"([^"]*)"`)

// metricNames returns the metric names a PromQL expression selects, in
// order, each once. It is a lexer, not a parser: it skips strings, label
// matchers, ranges, numbers, Grafana variables, function calls and
// keywords, and fails on unbalanced brackets and unterminated strings.
func metricNames(expr string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	isIdentStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isIdent := func(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
	depth := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '{' || c == '[':
			closer := map[byte]byte{'{': '}', '[': ']'}[c]
			j := i + 1
			for j < len(expr) && expr[j] != closer {
				if q := expr[j]; q == '"' || q == '\'' || q == '`' {
					end, err := skipString(expr, j)
					if err != nil {
						return nil, err
					}
					j = end
					continue
				}
				j++
			}
			if j == len(expr) {
				return nil, fmt.Errorf("unclosed %q at %d", c, i)
			}
			if c == '{' {
				if m := nameMatcher.FindStringSubmatch(expr[i:j]); m != nil {
					add(m[1])
				}
			}
			i = j + 1
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("unbalanced ')' at %d", i)
			}
			i++
		case c == '$' || c >= '0' && c <= '9' || c == '.':
			i++
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && expr[k] == ' ' {
				k++
			}
			call := k < len(expr) && expr[k] == '('
			switch {
			case labelLists[word] && call:
				end := strings.IndexByte(expr[k:], ')')
				if end < 0 {
					return nil, fmt.Errorf("unclosed label list after %s", word)
				}
				j = k + end + 1
			case promqlWords[word] || call:
			default:
				add(word)
			}
			i = j
		default:
			i++
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced '(' in %s", expr)
	}
	return out, nil
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at %d", i)
}
