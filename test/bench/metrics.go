package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

// scrapeAPIServer reads apiserver_request_total from the API server's
// /metrics and sums it into Requests (verbs lower-cased: get, list, watch,
// post, put, patch, apply, delete, ...). WATCH requests are counted by the
// API server when they end, so open watches are not in the sum.
func scrapeAPIServer(ctx context.Context, cfg *rest.Config) (Requests, error) {
	out := Requests{ByVerb: map[string]int64{}, ByResource: map[string]int64{}}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+"/metrics", nil)
	if err != nil {
		return out, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return out, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return out, fmt.Errorf("parsing API server metrics: %w", err)
	}
	fam := families["apiserver_request_total"]
	if fam == nil {
		return out, fmt.Errorf("API server metrics have no apiserver_request_total")
	}
	for _, m := range fam.GetMetric() {
		l := labels(m)
		verb := apiVerb(strings.ToLower(l["verb"]))
		n := int64(m.GetCounter().GetValue())
		out.ByVerb[verb] += n
		res := l["resource"]
		if l["subresource"] != "" {
			res += "/" + l["subresource"]
		}
		if res != "" {
			out.ByResource[verb+" "+res] += n
		}
	}
	return out, nil
}

// apiVerb maps the API server's verb label to the client counter's verbs.
func apiVerb(v string) string {
	switch v {
	case "post":
		return "create"
	case "put":
		return "update"
	case "apply":
		return "patch"
	case "watchlist":
		return "watch"
	case "", "connect":
		return "nonresource"
	}
	return v
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound float64 `json:"le"`
	Count      uint64  `json:"count"`
}

// Histogram is a Prometheus histogram's buckets, count and sum.
type Histogram struct {
	Buckets []Bucket `json:"buckets"`
	Count   uint64   `json:"count"`
	Sum     float64  `json:"sum"`
}

// Sub returns h minus before (same buckets).
func (h Histogram) Sub(before Histogram) Histogram {
	out := Histogram{Count: h.Count - before.Count, Sum: h.Sum - before.Sum}
	for i, b := range h.Buckets {
		c := b.Count
		if i < len(before.Buckets) {
			c -= before.Buckets[i].Count
		}
		out.Buckets = append(out.Buckets, Bucket{UpperBound: b.UpperBound, Count: c})
	}
	return out
}

// Quantile estimates the q-quantile like PromQL's histogram_quantile: linear
// interpolation inside the bucket holding the rank. NaN without samples.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count == 0 || len(h.Buckets) == 0 {
		return math.NaN()
	}
	b := append([]Bucket(nil), h.Buckets...)
	sort.Slice(b, func(i, j int) bool { return b[i].UpperBound < b[j].UpperBound })
	rank := q * float64(h.Count)
	lower, prev := 0.0, uint64(0)
	for _, bk := range b {
		if float64(bk.Count) >= rank {
			if math.IsInf(bk.UpperBound, 1) {
				return lower // above the highest finite bucket
			}
			inBucket := float64(bk.Count - prev)
			if inBucket == 0 {
				return bk.UpperBound
			}
			return lower + (bk.UpperBound-lower)*(rank-float64(prev))/inBucket
		}
		lower, prev = bk.UpperBound, bk.Count
	}
	return lower
}

// histogramFrom sums the histogram series of fam whose labels match want.
func histogramFrom(fam *dto.MetricFamily, want map[string]string) Histogram {
	var h Histogram
	if fam == nil {
		return h
	}
	idx := map[float64]int{}
	for _, m := range fam.GetMetric() {
		if !matches(m, want) || m.GetHistogram() == nil {
			continue
		}
		mh := m.GetHistogram()
		h.Count += mh.GetSampleCount()
		h.Sum += mh.GetSampleSum()
		for _, b := range mh.GetBucket() {
			i, ok := idx[b.GetUpperBound()]
			if !ok {
				i = len(h.Buckets)
				idx[b.GetUpperBound()] = i
				h.Buckets = append(h.Buckets, Bucket{UpperBound: b.GetUpperBound()})
			}
			h.Buckets[i].Count += b.GetCumulativeCount()
		}
	}
	h.Buckets = append(h.Buckets, Bucket{UpperBound: math.Inf(1), Count: h.Count})
	return h
}

// sumFrom sums the counter or gauge series of fam whose labels match want.
func sumFrom(fam *dto.MetricFamily, want map[string]string) float64 {
	var s float64
	if fam == nil {
		return 0
	}
	for _, m := range fam.GetMetric() {
		if !matches(m, want) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			s += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			s += m.GetGauge().GetValue()
		}
	}
	return s
}

func matches(m *dto.Metric, want map[string]string) bool {
	l := labels(m)
	for k, v := range want {
		if l[k] != v {
			return false
		}
	}
	return true
}

type bucketJSON struct {
	UpperBound string `json:"le"`
	Count      uint64 `json:"count"`
}

// MarshalJSON writes le as a string ("+Inf" for the last bucket).
func (b Bucket) MarshalJSON() ([]byte, error) {
	return json.Marshal(bucketJSON{UpperBound: strconv.FormatFloat(b.UpperBound, 'g', -1, 64), Count: b.Count})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (b *Bucket) UnmarshalJSON(data []byte) error {
	var j bucketJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	le, err := strconv.ParseFloat(j.UpperBound, 64)
	if err != nil {
		return err
	}
	b.UpperBound, b.Count = le, j.Count
	return nil
}
