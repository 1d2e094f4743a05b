package bench

import (
	"maps"
	"net/http"
	"sync"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"
)

// Requests counts API requests by verb (get, list, watch, create, update,
// patch, delete, deletecollection; "nonresource" for discovery and the
// like) and by "verb resource[/subresource]".
type Requests struct {
	ByVerb     map[string]int64 `json:"byVerb"`
	ByResource map[string]int64 `json:"byResource"`
}

var readVerbs = map[string]bool{"get": true, "list": true, "watch": true, "nonresource": true}

// Reads are GET, LIST and WATCH requests (and non-resource reads).
func (r Requests) Reads() int64 { return r.sum(func(v string) bool { return readVerbs[v] }) }

// Writes are POST, PUT, PATCH and DELETE requests.
func (r Requests) Writes() int64 { return r.sum(func(v string) bool { return !readVerbs[v] }) }

func (r Requests) sum(keep func(string) bool) int64 {
	var n int64
	for v, c := range r.ByVerb {
		if keep(v) {
			n += c
		}
	}
	return n
}

// Sub returns r minus before.
func (r Requests) Sub(before Requests) Requests {
	out := Requests{ByVerb: map[string]int64{}, ByResource: map[string]int64{}}
	for k, v := range r.ByVerb {
		if d := v - before.ByVerb[k]; d != 0 {
			out.ByVerb[k] = d
		}
	}
	for k, v := range r.ByResource {
		if d := v - before.ByResource[k]; d != 0 {
			out.ByResource[k] = d
		}
	}
	return out
}

// WritesExcept are the writes to resources other than those named
// ("leases": the API server renews its own identity lease every 10s).
func (r Requests) WritesExcept(resources ...string) int64 {
	var n int64
	for k, v := range r.WriteResources() {
		_, res, _ := cut(k)
		skip := false
		for _, s := range resources {
			skip = skip || res == s
		}
		if !skip {
			n += v
		}
	}
	return n
}

// WriteResources is the "verb resource" breakdown of the writes only.
func (r Requests) WriteResources() map[string]int64 {
	out := map[string]int64{}
	for k, v := range r.ByResource {
		verb, _, _ := cut(k)
		if !readVerbs[verb] {
			out[k] = v
		}
	}
	return out
}

func cut(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// counter counts the requests going through a rest.Config's transport.
type counter struct {
	mu      sync.Mutex
	req     Requests
	factory *request.RequestInfoFactory
}

func newCounter() *counter {
	return &counter{
		req: Requests{ByVerb: map[string]int64{}, ByResource: map[string]int64{}},
		factory: &request.RequestInfoFactory{
			APIPrefixes:          sets.NewString("api", "apis"),
			GrouplessAPIPrefixes: sets.NewString("api"),
		},
	}
}

// instrument makes cfg's requests count in c (keeping any earlier wrapper).
func (c *counter) instrument(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	prev := cfg.WrapTransport
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		if prev != nil {
			rt = prev(rt)
		}
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			c.record(req)
			return rt.RoundTrip(req)
		})
	}
	return cfg
}

func (c *counter) record(req *http.Request) {
	verb, res := "nonresource", ""
	if info, err := c.factory.NewRequestInfo(req); err == nil && info.IsResourceRequest {
		verb, res = info.Verb, info.Resource
		if info.Subresource != "" {
			res += "/" + info.Subresource
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.req.ByVerb[verb]++
	if res != "" {
		c.req.ByResource[verb+" "+res]++
	}
}

func (c *counter) snapshot() Requests {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Requests{ByVerb: maps.Clone(c.req.ByVerb), ByResource: maps.Clone(c.req.ByResource)}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Heartbeats are the resources the cluster writes at rest whatever runs on
// it: kubelets' and leader elections' leases, and virt-handler's node
// heartbeat (annotation kubevirt.io/heartbeat, every minute: KubeVirt
// pkg/virt-handler/heartbeat; the sandbox plays it). The operator has no
// write verb on either (its ClusterRole: nodes get, list, watch), so
// leaving them out hides none of its writes.
var Heartbeats = []string{"leases", "nodes"}
