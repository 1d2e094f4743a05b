// Package kubevirt turns a small Machine description into a KubeVirt
// VirtualMachine (kubevirt.io/v1) plus the cloud-init Secret it boots with,
// and reads the VirtualMachine and its VirtualMachineInstance back as an
// Observation.
//
// A controller uses it in three steps:
//
//  1. Map its own API to a Machine (including the KubeVirt run strategy it
//     wants); ReadSSHKeys loads the lines of a user Secret that parse as
//     SSH public keys, when the Secret carries the caller's opt-in label
//     (a stalled *apply.Failure, ReasonSSHKeySecretNotFound, when absent
//     or unlabelled).
//
//  2. Call Reconcile(ctx, c, id, owner, machine) with its own
//     apply.Identity id (the package has no names of its own):
//
//     id := apply.Identity{FieldManager: "my-controller", Domain: "vm.example.com"}
//     obs, err := kubevirt.Reconcile(ctx, c, id, owner, machine)
//
//     It validates the machine (*InvalidInputError), applies the Secret
//     <owner>-cloudinit and the VirtualMachine with Server-Side Apply under
//     id.FieldManager (only when a desired field differs, so a steady state
//     writes nothing), then
//     reads the VM and VMI. Without the KubeVirt CRDs it returns an error
//     wrapping ErrKubeVirtNotInstalled. spec.runStrategy is the machine's
//     only when the VM is created or Machine.RunStrategy changed since the
//     last apply (annotation id.Key(KeyAppliedRunStrategy)); otherwise the VM keeps the
//     value a power action (virtctl start/stop) gave it (RunStrategyToApply).
//     A NIC with BindingMacvtap needs the macvtap binding plugin registered
//     in a KubeVirt CR; without it nothing is written and the error is a
//     *BindingNotRegisteredError.
//
//     On a running instance Reconcile also decides what reaches the guest
//     without a restart (PlanLive, with what the KubeVirt CR allows:
//     ReadLiveUpdates): a disk added is written hotpluggable, a bridge NIC
//     removed is kept with state absent until KubeVirt unplugged it, and
//     the changes that wait for a restart are listed with why
//     (Observation.LivePlan, LiveRequested, HotplugVolumes).
//
//  3. Turn the returned Observation into conditions: Ready, NotReadyReason
//     (a Reason* constant and a message), Phase, Node, Interfaces,
//     RestartRequired, Stopped. Resources is the running guest's CPU and
//     memory; PlanResources (with the cluster's ClusterLiveUpdate) says
//     which cpu or memory change KubeVirt applies live and why the others
//     wait for a restart.
//
// cpu is rendered as sockets of one core and memory as the guest memory
// alone, the units KubeVirt hot-plugs; a running VM keeps the cores,
// threads, maxima and memory request it booted with until a restart, so
// applying never forces one (hotplug_cpu.go).
//
// Both objects carry the labels id.OwnerLabels(owner name)
// (app.kubernetes.io/managed-by=<id.ManagedBy> and <id.OwnerLabelKey()>=<owner
// name>) and a controller owner reference to
// the owner, so the controller can watch them with Owns(). The pure builders
// BuildVM and BuildCloudInitSecret take the reference's apiVersion/kind from
// the owner's TypeMeta; Reconcile fills it from the client's scheme.
//
// Cloud-init is NoCloud: user data (#cloud-config) and network data
// (version 2) come from the Secret's userdata and networkdata keys. Plain
// passwords are hashed with SHA-512 crypt (crypt(3)'s $6$ scheme) and never stored.
// The pod-network interface gets a MAC derived from the machine's namespace
// and name (PodNetworkMAC) so network data can match it by MAC, which works
// on every guest regardless of its interface naming; a Multus NIC carries
// its own IP configuration (NIC.IP, the pod network's is
// Machine.PodNetworkIP), is matched by its MAC and renamed to the NIC name. The guest gets exactly
// one default route per address family (the rule is on RenderNetworkData)
// and, unless CloudInit.SkipGuestAgent, the QEMU guest agent, without which
// KubeVirt reports no address for bridge- or SR-IOV-bound NICs
// (Interface.FromGuestAgent). A container disk image is the plain registry
// reference (ContainerDiskImage).
package kubevirt
