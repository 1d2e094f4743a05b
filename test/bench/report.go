package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Row is one line of the table. Nil values are not applicable.
type Row struct {
	Metric   string   `json:"metric"`
	Operator *float64 `json:"operator,omitempty"`
	Floor    *float64 `json:"floor,omitempty"`
	Ratio    *float64 `json:"ratio,omitempty"`
	Target   string   `json:"target,omitempty"`
	// Met says whether the target was met (nil: no target).
	Met *bool `json:"met,omitempty"`
}

func f64(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

func boolp(b bool) *bool { return &b }

func row(metric string, op, floor *float64, target string, met *bool) Row {
	r := Row{Metric: metric, Operator: op, Floor: floor, Target: target, Met: met}
	if op != nil && floor != nil && *floor != 0 {
		r.Ratio = f64(*op / *floor)
	}
	return r
}

// Targets of issue 19, as ratios operator/floor within one run.
const (
	// ConvergeTarget bounds convergence (create → all Ready) against the
	// floor's (create → all VMs Running).
	ConvergeTarget = 1.2
	// WritesTarget bounds the manager's writes per Wukong at its client
	// transport against the floor's (its five creates per machine).
	WritesTarget = 2.0
)

// ratioRow is a row whose target is ratio ≤ limit.
func ratioRow(metric string, op, floor *float64, limit float64) Row {
	r := row(metric, op, floor, fmt.Sprintf("≤ %.1f× floor", limit), nil)
	if r.Ratio != nil {
		r.Met = boolp(*r.Ratio <= limit)
	}
	return r
}

// Write kinds reported per Wukong (WriteKinds).
const (
	KindStatus = "Wukong status patches"
	KindWukong = "Wukong writes (metadata, finalizer)"
	KindEvents = "Events (create, series patch)"
	KindOther  = "other writes"
	// kindChild prefixes a child resource's writes (Server-Side Apply
	// patches and creates together).
	kindChild = "child apply/create: "
)

// WriteKinds splits the writes of r by kind: Wukong status patches, other
// writes to Wukongs, Events, writes to each child resource ("child
// apply/create: datavolumes", ...), and the rest. The values add up to
// r.Writes().
func WriteKinds(r Requests) map[string]int64 {
	out := map[string]int64{}
	for k, v := range r.WriteResources() {
		_, res, _ := cut(k)
		switch res {
		case "wukongs/status":
			out[KindStatus] += v
		case "wukongs":
			out[KindWukong] += v
		case "events":
			out[KindEvents] += v
		case "network-attachment-definitions", "datavolumes", "persistentvolumeclaims", "secrets", "virtualmachines":
			out[kindChild+res] += v
		default:
			out[KindOther] += v
		}
	}
	// Writes without a resource (none in practice) are "other" too.
	var sum int64
	for _, v := range out {
		sum += v
	}
	if rest := r.Writes() - sum; rest > 0 {
		out[KindOther] += rest
	}
	return out
}

// writeKindOrder lists the kinds present in either map: status, Wukong,
// children by name, Events, other.
func writeKindOrder(a, b map[string]int64) []string {
	var children []string
	seen := map[string]bool{}
	for _, m := range []map[string]int64{a, b} {
		for k := range m {
			if strings.HasPrefix(k, kindChild) && !seen[k] {
				seen[k] = true
				children = append(children, k)
			}
		}
	}
	sort.Strings(children)
	var out []string
	has := func(k string) bool { return a[k] != 0 || b[k] != 0 }
	for _, k := range []string{KindStatus, KindWukong} {
		if has(k) {
			out = append(out, k)
		}
	}
	out = append(out, children...)
	for _, k := range []string{KindEvents, KindOther} {
		if has(k) {
			out = append(out, k)
		}
	}
	return out
}

func rows(res *Result) []Row {
	n := float64(res.Options.N)
	op, fl := &res.Operator, &res.Floor
	per := func(v int64) *float64 { return f64(float64(v) / n) }
	var out []Row

	out = append(out, ratioRow("converge: create → all Ready (s)", f64(op.Converge.Total), f64(fl.Converge.Total), ConvergeTarget),
		row(fmt.Sprintf("  batch 1: %d (s)", batches(res.Options.N)[0][1]), f64(op.Converge.Batch1), f64(fl.Converge.Batch1), "", nil),
		row(fmt.Sprintf("  batch 2: +%d (s)", res.Options.N-batches(res.Options.N)[0][1]), f64(op.Converge.Batch2), f64(fl.Converge.Batch2), "", nil),
		row("client reads / Wukong (transport)", per(op.Manager.Reads()), per(fl.Client.Reads()), "", nil),
		ratioRow("client writes / Wukong (transport)", per(op.Manager.Writes()), per(fl.Client.Writes()), WritesTarget),
	)
	opKinds, flKinds := WriteKinds(op.Manager), WriteKinds(fl.Client)
	for _, k := range writeKindOrder(opKinds, flKinds) {
		out = append(out, row("  "+k, per(opKinds[k]), per(flKinds[k]), "", nil))
	}
	out = append(out,
		row("API server reads / Wukong (all but poller)", per(op.APIServer.Reads()), per(fl.APIServer.Reads()), "", nil),
		row("API server writes / Wukong (all but poller)", per(op.APIServer.Writes()), per(fl.APIServer.Writes()), "", nil),
	)
	zero := func(metric string, v int64) Row {
		return row(metric, f64(float64(v)), nil, "0", boolp(v == 0))
	}
	out = append(out,
		zero(fmt.Sprintf("manager writes, quiet %.0fs", op.QuietSeconds), op.QuietManager.Writes()),
		zero(fmt.Sprintf("manager writes, restart+resync (%.0fs)", op.ResyncSeconds), op.ResyncManager.Writes()),
		zero("API server writes at rest (all clients, excl. heartbeats: leases, nodes)", op.APIServerAtRest.WritesExcept(Heartbeats...)),
		row("manager reads / Wukong, restart+resync", per(op.ResyncManager.Reads()), nil, "", nil),
	)

	var noNoise, noise, quarter, full *MemoryPoint
	for i := range op.Memory {
		m := &op.Memory[i]
		switch {
		case m.Wukongs == 0 && !m.Noise:
			noNoise = m
		case m.Wukongs == 0:
			noise = m
		case m.Wukongs == res.Options.N:
			full = m
		default:
			quarter = m
		}
	}
	if noNoise != nil && noise != nil {
		delta := mib(noise.HeapAlloc) - mib(noNoise.HeapAlloc)
		out = append(out,
			row("manager heap, 0 Wukongs, no noise (MiB)", f64(mib(noNoise.HeapAlloc)), nil, "", nil),
			row(fmt.Sprintf("manager heap, 0 Wukongs, +%d Secrets +%d PVCs (MiB)", res.Options.NoiseSecrets, res.Options.NoisePVCs),
				f64(mib(noise.HeapAlloc)), nil, "< no-noise + 2 MiB", boolp(delta < 2)),
		)
		cached := noise.Cache["Secret"] + noise.Cache["PersistentVolumeClaim"]
		out = append(out, row("noise Secrets+PVCs in the manager's cache", f64(float64(cached)), nil, "0", boolp(cached == 0)))
	}
	if quarter != nil && full != nil {
		growth := (float64(full.HeapAlloc) - float64(quarter.HeapAlloc)) / float64(full.Wukongs-quarter.Wukongs) / 1024
		out = append(out,
			row(fmt.Sprintf("manager heap at %d (MiB)", quarter.Wukongs), f64(mib(quarter.HeapAlloc)), nil, "", nil),
			row(fmt.Sprintf("manager heap at %d (MiB)", full.Wukongs), f64(mib(full.HeapAlloc)), nil, "", nil),
			row(fmt.Sprintf("manager RSS at %d (MiB)", full.Wukongs), f64(mib(full.RSS)), nil, "", nil),
			row("manager heap growth / Wukong (KiB)", f64(growth), nil, "", nil),
		)
		total := 0
		for _, v := range full.Cache {
			total += v
		}
		// Wukong, Secret, 2 PVCs, VM, VMI, 2 DVs (the image disk's and the
		// blank disk's), NAD per Wukong, and the NodeBridge's one policy.
		want := 9*res.Options.N + 1
		out = append(out, row("objects in the manager's cache at N", f64(float64(total)), nil,
			fmt.Sprintf("%d (9 per Wukong, 1 bridge policy)", want), boolp(total == want)))
	}
	out = append(out,
		row("reconcile p50 (ms)", f64(op.ReconcileTime.Quantile(0.5)*1000), nil, "", nil),
		row("reconcile p99 (ms)", f64(op.ReconcileTime.Quantile(0.99)*1000), nil, "", nil),
		row("reconciles / Wukong (create→Ready+quiet)", f64(float64(op.ReconcileTime.Count)/n), nil, "", nil),
		row("delete: all children gone (s)", f64(op.Delete.Total), f64(fl.Delete.Total), "", nil),
	)
	if st := op.Stalled; st.Wukongs > 0 {
		out = append(out,
			row(fmt.Sprintf("requests / Stalled Wukong (%d disks, missing class), first hour", st.Disks), f64(st.RequestsFirstHour), nil, "", nil),
			row(fmt.Sprintf("requests / Stalled Wukong (%d disks, missing class) / hour after", st.Disks), f64(st.RequestsPerHour), nil, "", nil),
		)
	}
	return out
}

// WriteTable prints the rows as a table.
func WriteTable(w io.Writer, res *Result) {
	num := func(v *float64) string {
		if v == nil {
			return "—"
		}
		switch a := math.Abs(*v); {
		case a == math.Trunc(a) && a < 1e9:
			return fmt.Sprintf("%.0f", *v)
		case a >= 100:
			return fmt.Sprintf("%.0f", *v)
		default:
			return fmt.Sprintf("%.2f", *v)
		}
	}
	width := len("metric")
	for _, r := range res.Rows {
		width = max(width, len([]rune(r.Metric)))
	}
	line := func(cols ...string) {
		pad := width - len([]rune(cols[0]))
		_, _ = fmt.Fprintf(w, "%s%s | %9s | %9s | %7s | %s\n", cols[0], strings.Repeat(" ", pad), cols[1], cols[2], cols[3], cols[4])
	}
	_, _ = fmt.Fprintf(w, "Wukong bench: N=%d, %d CPUs, %s, kube-apiserver %s, controller-runtime %s, run %.0fs\n",
		res.Options.N, res.Env.NumCPU, res.Env.GoVersion, res.Env.APIServer, res.Env.Modules["sigs.k8s.io/controller-runtime"], res.Seconds)
	if res.Env.LoadStart != "" || res.Env.LoadEnd != "" {
		_, _ = fmt.Fprintf(w, "load average (1m 5m 15m): %s at start, %s at end (other work on these cores counts)\n", res.Env.LoadStart, res.Env.LoadEnd)
	}
	line("metric", "operator", "floor", "ratio", "target")
	line(strings.Repeat("-", width), strings.Repeat("-", 9), strings.Repeat("-", 9), strings.Repeat("-", 7), "------")
	for _, r := range res.Rows {
		target := r.Target
		if r.Met != nil {
			if *r.Met {
				target += "  ok"
			} else {
				target += "  MISSED"
			}
		}
		line(r.Metric, num(r.Operator), num(r.Floor), num(r.Ratio), target)
	}
}

// WriteJSON writes res to path (creating its directory).
func WriteJSON(path string, res *Result) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
