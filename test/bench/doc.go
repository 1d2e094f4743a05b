// Package bench measures the Wukong operator at scale in the sandbox
// (package sandbox: a real kube-apiserver, etcd and garbage collector with
// SIMULATED KubeVirt, CDI, CSI and NMState). `make bench` runs it through
// cmd/bench (`go run ./bench/cmd/bench -n 500 -out bin/bench-500.json`),
// which prints one table (metric | operator | floor | ratio | target) and
// writes the same rows plus every raw count as JSON, with the machine's core
// count, its load average at the start and the end (other work on the same
// cores slows both phases, not always alike), the Go version and the
// Kubernetes and controller-runtime module versions.
//
// # Workload
//
// Each of N Wukongs has a registry-image boot disk (a CDI DataVolume), a
// blank data disk (a DataVolume with a blank source) and one bridge NIC on node bridge br-bench (a
// NetworkAttachmentDefinition). An administrator's NodeBridge declares
// br-bench once for the operator's namespace, before the timed batches (one
// NMState policy, Ready before the first batch; not part of the floor). The
// operator turns it into a NAD, two DataVolumes (whose PVCs the CDI
// simulator creates), a cloud-init Secret and a VirtualMachine (whose instance
// the KubeVirt simulator creates and runs).
//
// # Phases
//
// The floor phase runs first, in its own fresh sandbox; the operator phase
// second, in another fresh one (so neither inherits the other's etcd
// contents, simulator caches or API server watch caches). Both create their
// objects in two batches, N/4 and then the remaining 3N/4 on top, waiting for
// each batch to converge; times are the sum of the two batches.
//
//   - Floor: the same child objects, built with the same lib builders
//     (lib/network BuildNAD, lib/storage BuildDataVolume,
//     lib/kubevirt BuildCloudInitSecret and BuildVM) from the inputs the
//     operator maps the spec to, created by a plain client loop (8 workers)
//     in namespace bench-floor, without owner references (there is no
//     Wukong; the garbage collector would delete orphans). Converged when
//     every VM is Ready with printableStatus Running. Deleted by deleting
//     each object directly.
//   - Operator: the manager (operator/manager.New, MaxConcurrentReconciles
//     4) runs in a CHILD PROCESS: the bench binary re-executes itself
//     (MaybeRunManager), so its heap and RSS are its own and not the
//     sandbox's or the harness's. Its rest.Config has QPS 500 / Burst 1000
//     and a WrapTransport that counts every request. Converged when every
//     Wukong is Ready=True for its current generation. Deleted by deleting
//     the Wukongs (they carry no finalizer; the garbage collector removes
//     the children).
//
// # Measurements
//
//  1. Convergence: wall time from the first create of a batch until the
//     whole batch is Ready (operator) or Running (floor); ratio
//     operator/floor, target 1.2 (issue 19). The operator creates the VM only once
//     disks are imported and Ready needs one more status write after the VM
//     runs; the floor creates everything at once, so at large N its VMs wait
//     on imports and make the simulators write more often, and the operator
//     can come out slightly ahead (ratio below 1). Readiness is polled
//     every 500ms (2ms per Wukong above 250: 2s at N=1000, so polling
//     does not load the shared cores), so times carry up to one poll
//     interval of granularity. Each wait gives up after 10 minutes (3s
//     per Wukong above 200).
//  2. API requests per Wukong from first create to all Ready, split into
//     reads (GET, LIST, WATCH, discovery) and writes (POST, PUT, PATCH
//     incl. server-side apply, DELETE): (a) at the client transport: the
//     manager's, and the floor's writer client; (b) at the API server:
//     apiserver_request_total scraped from its /metrics before and after,
//     minus the bench's own polling client. (b) includes the simulators, the
//     garbage collector and, in the operator phase, the bench's N creates
//     of the Wukongs. The API server counts a WATCH when it ends, so open
//     watches are missing from (b). The client writes per Wukong have a
//     target: at most 2.0x the floor's (issue 19), and are split by kind
//     (WriteKinds): Wukong status patches, other Wukong writes, each child
//     resource's Server-Side Apply patches and creates, Events (creates and
//     series patches) and the rest, so the kind that regresses shows.
//  3. Writes at rest: the manager's writes during a quiet period (20s)
//     after convergence, then the manager is stopped and a new one started
//     on the same cluster (a forced resync: it re-lists every informer and
//     reconciles every Wukong); its writes are counted from its start until
//     its queue drained and 5s more. The API server's writes over the whole
//     quiet+restart window are reported too, excluding leases (the
//     kube-apiserver renews its own identity lease every 10s) and nodes;
//     that window opens once the simulators have gone Settle (5s) without
//     such a write after all Ready (a VM's status follows its VMI's, late
//     on a loaded machine), at most Timeout later. Target: 0.
//  4. Memory of the manager process: HeapAlloc right after runtime.GC()
//     and VmRSS from /proc/self/status, at 0 Wukongs without noise (a first
//     manager, stopped), at 0 Wukongs after 2000 unrelated 4KiB Secrets and
//     500 unrelated Pending PVCs were created (the manager that then runs),
//     at N/4 and at N; growth per Wukong is (heap(N)-heap(N/4))/(3N/4), and
//     the cache's object count per kind shows the label-filtered cache holds
//     only managed objects (9 per Wukong: Wukong, Secret, 2 PVCs, VM, VMI,
//     2 DataVolumes, NAD; plus br-bench's one NodeNetworkConfigurationPolicy).
//     The child is the bench binary, so its text segment
//     is larger than cmd/manager's: RSS is a slight overestimate.
//  5. Reconcile latency p50/p99 from the manager's
//     controller_runtime_reconcile_time_seconds{controller="wukong"}
//     histogram (convergence plus quiet period), interpolated inside buckets
//     like PromQL's histogram_quantile; the restarted manager's histogram is
//     in the JSON.
//  6. Deletion: from the first delete until no Wukong, VM, VMI, DataVolume,
//     PVC, NAD or Secret is left in the namespace, against the floor's
//     direct deletes waiting for the same. PersistentVolumes (cluster
//     scoped, reclaimed by the storage simulator) are not waited for.
//
// # Caveats
//
// The cluster is simulated: KubeVirt, CDI and CSI are small controllers that
// write status on a timer (import progress every ImportInterval), so
// absolute times say how the operator and the simulators share one API
// server on loopback, not how long a real VM takes to boot. The simulators
// and the kube-controller-manager share the benchmark machine's cores with
// the API server, etcd and the manager; the simulators' clients run at QPS
// 500 / Burst 1000 and the storage, CDI and NMState simulators on 4 workers
// (KubeVirt's on one, so scheduling never races), which bounds the
// throughput of both phases alike.
// Ratios are from one run each; expect run-to-run noise of 10-20% at small
// N. The request counts at the client transport are exact; the API server's
// are for the whole cluster.
package bench
