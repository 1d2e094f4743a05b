// Package sandbox runs a simulated cluster for Wukong's e2e suite, the demo
// (`make sandbox`) and the benchmarks.
//
// Real code:
//
//   - kube-apiserver and etcd (controller-runtime envtest) with the Wukong,
//     Multus and NMState CRDs and KubeVirt's and CDI's CRDs as virt-operator
//     and cdi-operator install them (test/crds/README.md);
//   - kube-controller-manager running only the garbage collector, namespace,
//     disruption (PodDisruptionBudget status, which the eviction API reads)
//     resource quota (ResourceQuota status.used, which the API server's quota
//     admission needs) and a few other controllers (so owner-reference
//     deletion happens);
//     no node lifecycle controller (see LoseNode);
//   - the eviction API (pods/eviction, served by kube-apiserver), so
//     `kubectl drain` and k8s.io/kubectl/pkg/drain work as on a cluster;
//   - kube-scheduler, which binds the launcher pods;
//   - KubeVirt's admission (admission.go): the VirtualMachine and
//     VirtualMachineInstance mutating and validating webhooks virt-api
//     serves, from kubevirt.io/kubevirt (hack/kubevirt-admission), with
//     virt-api's cluster config read from the sandbox's KubeVirt CR; also
//     the VirtualMachineInstanceMigration mutator and admitters (a
//     migration of a VMI that is not LiveMigratable is refused: "Cannot
//     migrate VMI, Reason: ...") and the pods/eviction interceptor
//     (admitters.PodEvictionAdmitter, registered as virt-operator registers
//     it: virt-launcher-eviction-interceptor.kubevirt.io, failurePolicy
//     Fail, match condition on virt-launcher pod names). By the VMI's
//     evictionStrategy, else the KubeVirt CR's
//     spec.configuration.evictionStrategy (default None): LiveMigrate on a
//     VMI that is not migratable refuses the eviction (429) and marks
//     nothing; LiveMigrate, or LiveMigrateIfPossible on a migratable VMI,
//     or External, sets the VMI's status.evacuationNodeName and refuses
//     the eviction (429, "Eviction triggered evacuation of VMI ..."); None,
//     or LiveMigrateIfPossible on a VMI that is not migratable, lets the
//     eviction delete the pod. The server acts as virt-api's service
//     account (VirtAPIUser), so KubeVirt's VMI mutator keeps its status
//     patch; and KubeVirt's VirtualMachineSnapshot and
//     VirtualMachineRestore admitters (pkg/storage/admitters);
//   - CDI's admission: the DataVolume mutating and validating webhooks
//     cdi-apiserver serves, from kubevirt.io/containerized-data-importer
//     (hack/cdi-admission);
//   - CDI's StorageProfile controller (in the same cdi-admission process):
//     one StorageProfile per StorageClass, with the claim property sets of
//     the profile's spec or of CDI's table of known provisioners.
//
// Both admission servers are registered by the webhook configurations
// their operators install (failurePolicy Fail), so the API server refuses
// what a real cluster refuses, with the same messages, and stores the
// defaults a real cluster stores (a VM's firmware UUID and machine type, a
// VMI's finalizer and defaults).
//
// Fixtures: four StorageClasses (standard, the default; wffc; fixed, not
// expandable; unknown-provisioner, whose driver neither CDI nor the sandbox
// knows, so its profile has no access modes and its claims are never
// provisioned), StorageProfiles for the first three with
// spec.claimPropertySets set as an administrator sets them (CDI does not
// know the sandbox's CSI driver either), fake Nodes, a KubeVirt CR (namespace
// kubevirt) that registers the macvtap network binding plugin as KubeVirt's
// user guide does, and CDI's CDIConfig "config".
//
// Simulated: small simulators play the parts of the systems a real cluster
// would run. They act as virt-controller's service account
// (SimulatorUser), which KubeVirt's admission trusts as its own (only it
// may write a VMI's status):
//
//   - Storage (CSI provisioner + PV controller): binds Pending PVCs, creating a
//     PersistentVolume; WaitForFirstConsumer claims bind once a
//     VirtualMachineInstance uses them; grown requests are reflected in
//     status.capacity at once (no FileSystemResizePending step).
//   - CDI: a DataVolume gets its PVC (spec.storage completed from the
//     StorageProfile as CDI's DataVolume controller does; without access
//     modes from either it gets none, and Bound=False reason
//     ErrClaimNotValid: pkg/controller/datavolume/util.go), then imports with advancing
//     status.progress to Succeeded. An unreachable source (http host ending in
//     ".invalid", registry URL containing "unreachable") behaves like real CDI
//     on a DNS failure: the importer pod keeps restarting, so the DataVolume
//     stays ImportInProgress with restartCount growing and condition
//     Running=False reason "Error"; it never becomes Failed. A claim the
//     API server's quota admission refuses leaves the DataVolume Pending
//     with Bound and Ready False reason ErrExceededQuota and the API
//     server's message, a Warning Event of that reason, and a retry every
//     2 s (cdi.go). The claim carries every annotation of its DataVolume
//     and, for a Filesystem claim, the file system overhead CDIConfig's
//     status gives its class (none unless a test sets one); a Succeeded
//     DataVolume annotated cdi.kubevirt.io/storage.deleteAfterCompletion
//     "true" is garbage-collected, its claim handed to its owner, while
//     CDIConfig spec.dataVolumeTTLSeconds is set, as CDI before v1.62 did
//     (cdigc.go). An image server whose host begins with "private-ca." or
//     "login." fails the import with CDI's x509 or 401/unauthorized text
//     unless the DataVolume names a certConfigMap or a secretRef
//     (imageaccess.go).
//     A clone (source.pvc or source.snapshot) waits, in CloneScheduled, for
//     its source to exist, be bound and populated and be used by no running
//     VMI (with a Warning Event CloneSourceInUse on the DataVolume, as CDI
//     records for a pod using the claim), chooses its strategy as CDI's
//     planner does (the StorageProfile's cloneStrategy, a VolumeSnapshotClass
//     for the driver, one driver and volume mode, expansion) and records it
//     in annotation cdi.kubevirt.io/cloneType, then goes through that
//     strategy's phases to Succeeded (clone.go). Disk content is modelled by
//     one claim annotation, sandbox.novasphere.dev/data (AnnData): an import
//     writes its URL, a blank disk "blank", a clone copies its source's.
//   - KubeVirt: a running VirtualMachine gets a VirtualMachineInstance that
//     waits for its volumes, is scheduled onto a fake node (nodeSelector,
//     taints/tolerations, required pod anti-affinity on kubernetes.io/hostname)
//     and reports interfaces with MACs and IPs (static ones from the cloud-init
//     networkdata Secret). Template changes that need a restart set the VM
//     condition RestartRequired. spec.runStrategy is honoured as KubeVirt
//     documents it (user guide, "Run Strategies",
//     https://kubevirt.io/user-guide/compute/run_strategies/): Always,
//     RerunOnFailure and Once run a VMI, Halted stops it (its VMI is
//     deleted), so `virtctl start` (Halted -> Always) and `virtctl stop`
//     (Always -> Halted), which change spec.runStrategy, start and stop the
//     machine. Manual runs only on a start request and stops on a stop
//     request (status.stateChangeRequests, which virt-api's start, stop and
//     restart subresources add; the sandbox serves no subresource API, so a
//     caller adds them as virt-api would), and a stop request for the
//     running VMI restarts any other strategy's VM; each request is dropped
//     once done (virt-controller's isTrimFirstChangeRequestNeeded).
//     An interface whose network binding plugin no KubeVirt CR registers
//     keeps its VMI Pending with Synchronized=False (FailedCreate) and the
//     VM condition Failure, as virt-controller does when it cannot render
//     the launcher pod. Launcher pods are created through the API server
//     (KubeVirt's non-root security context, requests with an approximation
//     of KubeVirt's memory overhead, limits when a quota tracks limits.*),
//     so ResourceQuota, LimitRanger and PodSecurity admission are real; a
//     refusal is played as virt-controller plays it: Warning Event
//     FailedCreate on the VMI, Synchronized=False reason FailedCreate
//     ("failed to create virtual machine pod: <err>"), the VM Starting, a
//     retry every 2 s (kubevirtcr.go). KubeVirt's webhooks are registered
//     behind a forwarder that SetKubeVirtAdmissionReachable takes away
//     (connection refused, as while virt-api restarts; webhookoutage.go).
//   - Start failures (failures.go), as real nodes produce them: a launcher
//     pod whose NetworkAttachmentDefinition names a CNI plugin the nodes
//     lack (CNIPlugins; e.g. cnv-bridge) gets the kubelet's Warning Event
//     FailedCreatePodSandBox in Multus thick's wording (`failed to find
//     plugin "<type>" in path [/opt/cni/bin]`), once, and its VMI stays
//     Scheduling (the VM Starting); a VMI with a bridge-bound interface on a
//     node annotated NodeKernelWithout (a kernel without dummy or bridge
//     links; a test adds such a node with AddNode) gets virt-handler's
//     Warning Events SyncFailed ("... Critical network error: LinkAdd:
//     operation not supported") and Stopped ("The VirtualMachineInstance
//     crashed.") and fails; the VM then counts it in
//     status.startFailure, deletes the VMI, shows CrashLoopBackOff (no
//     Failure condition) and starts a new VMI after KubeVirt's backoff
//     (10-15 s, then 40-60 s, ...; pkg/virt-controller/watch/vm/vm.go).
//     Every VMI lists its launcher pod in status.activePods.
//   - NMState: NodeNetworkConfigurationPolicies become Available, with one
//     enactment per matching node; each node's NodeNetworkState lists its
//     interfaces (eth0, eth1, eth2, lo) and changes as nmstate applies a
//     policy (merged; state: absent removes); deleting a policy leaves the
//     nodes as they are. A policy that enslaves eth0 is rolled back
//     (Degraded), as kubernetes-nmstate's probes make it.
//   - Live migration (migratable.go, migration.go), as KubeVirt v1.9.0:
//     every running VMI has the condition LiveMigratable (False with
//     virt-handler's reason and message: DisksNotLiveMigratable for a
//     PVC or DataVolume that is not ReadWriteMany,
//     InterfaceNotLiveMigratable for a bridge (or a binding plugin without
//     migration) on the pod network, HostDeviceNotLiveMigratable, ...),
//     status.migrationMethod (BlockMigration with a container disk or
//     another local volume) and status.volumeStatus[].persistentVolumeClaimInfo.
//     A VMI the eviction admitter marked gets EvictionRequested=True and,
//     if its strategy migrates, an evacuation migration
//     (kubevirt-evacuation-*); any VirtualMachineInstanceMigration (an
//     evacuation's or a user's, as `virtctl migrate` creates) goes Pending,
//     Scheduling, Scheduled, PreparingTarget, TargetReady, Running (for
//     MigrationRunTime) and Succeeded, with a target launcher pod the
//     real kube-scheduler places (cordons, taints and the VMI's affinity
//     hold; never beside the source), the VMI's status.migrationState
//     (sourceNode, targetNode, sourcePod, targetPod, migrationUid, mode,
//     start and end timestamps, completed), and the VMI moved to the
//     target (status.nodeName, label kubevirt.io/nodeName,
//     evacuationNodeName cleared) while the source pod completes. The VM's
//     printableStatus is Migrating meanwhile. Knob:
//     ForceMigrationFailureAnnotation (KubeVirt's own
//     kubevirt.io/func-test-force-launcher-migration-failure) on a VMI (or
//     its VM's template) fails its migrations once Running: migration
//     Failed, migrationState failed with failureReason
//     MessageForcedMigrationFailure, the target pod deleted, the VMI left
//     where it was; a further evacuation migration waits KubeVirt's
//     backoff (20s, doubling).
//   - A running VMI whose launcher pod is gone (evicted under None,
//     force-deleted) becomes Failed (virt-controller's lifecycle.go); the
//     VM controller then starts a new VMI at once (a VMI that ran is no
//     start failure), on a node the scheduler picks.
//   - Node loss (nodeloss.go): LoseNode(ctx, c, node, ago) plays a node
//     whose kubelet and virt-handler stopped ago before: Ready=Unknown
//     (NodeStatusUnknown), the node.kubernetes.io/unreachable NoSchedule
//     and NoExecute taints, virt-handler's kubevirt.io/heartbeat left at
//     that time; its pods stay Running in the API and a graceful delete
//     leaves them Terminating (no kubelet confirms it), only a force
//     delete removes them. KubeVirt's node controller labels the node
//     kubevirt.io/schedulable=false once the heartbeat is older than 5
//     minutes (VirtHandlerHeartbeatTimeout) and fails the VMIs on it
//     whose pods are gone (status.reason NodeUnresponsive).
//     RestoreNode(ctx, c, node) brings the node back. On live nodes
//     virt-handler's heartbeat refreshes the annotation and
//     kubevirt.io/schedulable=true every minute.
//   - Snapshots and restores (snapshot.go): KubeVirt's snapshot
//     controller (VirtualMachineSnapshot, its content and one
//     VolumeSnapshot per disk; indications Online, GuestAgent or
//     NoGuestAgent from the VMI's AgentConnected condition; each VM's
//     status.volumeSnapshotStatuses), snapshot-controller and the CSI
//     snapshotter (a VolumeSnapshot of a bound claim becomes readyToUse
//     with restoreSize), and KubeVirt's restore controller for
//     volumeRestorePolicy InPlace (waits for no VMI, StopTarget stops the
//     VM; restoreInProgress; DataVolume marked prePopulated, claim deleted
//     and made again from its VolumeSnapshot; the snapshot's VM spec
//     written back). A fixture VolumeSnapshotClass serves the sandbox's
//     driver; SnapshotlessProvisioner is a driver it provisions without
//     one. CDI's part: a prePopulated DataVolume gets no claim, a claim
//     annotated populatedFor a DataVolume becomes its.
//   - VMI release (virt-handler and virt-controller on deletion): a deleted
//     VMI's launcher pods go, then its phase becomes Succeeded and KubeVirt's
//     finalizer is removed (pkg/virt-controller/watch/vmi/lifecycle.go).
//
// The simulators read only the Kubernetes objects, never operator code. Every
// object they create carries the annotation
// sandbox.novasphere.dev/simulated: "true" and every log line starts with
// "[simulated]".
//
// The simulators log through Options.LogWriter; controller-runtime internals
// use its global logger, so callers should call ctrl.SetLogger as usual.
//
// Readiness (ready.go): Start returns, and writes the kubeconfig file
// (Options.KubeconfigPath, whole: a temporary file renamed), only once
// everything it runs serves: the API server calls each webhook
// configuration of the admission servers (a server-side dry run through
// each is refused by its webhook, or mutated by KubeVirt's VM mutator),
// the control-plane processes run, and the simulators' and
// Options.Operator's managers have started their controllers and synced
// their caches. So whoever waits for the file, or for Start (cmd/sandbox,
// which prints its ready line then; the e2e suite; the benchmarks), is
// answered as on a cluster from the first request. Stop removes the file.
//
// Usage:
//
//	sb, err := sandbox.Start(ctx, sandbox.Options{})
//	defer sb.Stop()
//	// sb.Client, sb.Config, sb.KubeconfigPath (for kubectl --kubeconfig)
package sandbox
