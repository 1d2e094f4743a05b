package kubevirt

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	kubevirtv1 "kubevirt.io/api/core/v1"
)

// Names of the lib's own label and annotation keys, under the caller's
// domain: the key is id.Key(name) for the apply.Identity passed in, e.g.
// "example.com/anti-affinity". Every object also carries
// id.OwnerLabels(owner name) (Labels).
const (
	// KeyAntiAffinity is the label set on the VMI template of machines
	// that asked for AntiAffinity, valued with their AntiAffinityGroup
	// (DefaultAntiAffinityGroup when empty); the virt-launcher pods of one
	// namespace with the same value repel each other. Pods of other
	// namespaces never count.
	KeyAntiAffinity = "anti-affinity"
	// DefaultAntiAffinityGroup is the KeyAntiAffinity value of machines
	// without an AntiAffinityGroup.
	DefaultAntiAffinityGroup = "true"
	// PreferredAntiAffinityWeight is the weight of the preferred
	// anti-affinity term (AntiAffinityPreferred): the highest the API
	// allows (1-100), so the rule outranks the scheduler's own spreading
	// preferences.
	PreferredAntiAffinityWeight = 100
	// KeyAppliedRunStrategy is the annotation BuildVM writes on the
	// VirtualMachine: the run strategy the lib's input (Machine.RunStrategy)
	// asked for when the VM was last applied. Reconcile compares it with the
	// input to tell a change of the owner's strategy from a power action
	// taken on the VM.
	KeyAppliedRunStrategy = "applied-run-strategy"
)

// Names of the devices the lib adds itself.
const (
	// PodNetworkName is the name of the pod network and its interface.
	PodNetworkName = "default"
	// CloudInitDiskName is the name of the NoCloud disk and volume.
	CloudInitDiskName = "cloudinitdisk"
	// ContainerDiskName is the name of the ephemeral boot disk used when the
	// machine has a ContainerDiskImage and no Disks.
	ContainerDiskName = "containerdisk"
	// CloudInitSecretSuffix: the cloud-init Secret is named <owner>-cloudinit.
	CloudInitSecretSuffix = "cloudinit"
	// UserDataKey and NetworkDataKey are the keys of the cloud-init Secret.
	UserDataKey    = "userdata"
	NetworkDataKey = "networkdata"
	// HostnameTopologyKey is the topology key of the anti-affinity term.
	HostnameTopologyKey = "kubernetes.io/hostname"
)

// Binding is how a secondary NIC is bound to the guest.
type Binding string

// Supported bindings.
const (
	BindingBridge Binding = "bridge"
	BindingSRIOV  Binding = "sriov"
)

// NetworkMode is how a guest NIC gets its addresses.
type NetworkMode string

// Supported network modes.
const (
	NetworkModeDHCP   NetworkMode = "dhcp"
	NetworkModeStatic NetworkMode = "static"
)

// Machine is everything BuildVM and BuildCloudInitSecret need.
type Machine struct {
	// Name of the VirtualMachine (in the owner's namespace).
	Name string
	// CPU is the number of vCPUs: sockets of one core and one thread
	// each, KubeVirt's hot-pluggable unit (a running VM rendered with
	// cores keeps them until a restart: hotplug_cpu.go). Unused (and not
	// validated) with an Instancetype.
	CPU int32
	// Memory is the guest memory (spec.domain.memory.guest; KubeVirt
	// requests it, plus its overhead, for the launcher pod). Unused (and
	// not validated) with an Instancetype.
	Memory resource.Quantity
	// Instancetype sizes the VM instead of CPU and Memory: the VM's
	// spec.instancetype, with no domain cpu, memory or memory request
	// (KubeVirt refuses those next to an instance type,
	// pkg/instancetype/apply cpu.go and memory.go). Reconcile refuses a
	// missing one (ReasonInstancetypeNotFound) before writing anything.
	Instancetype *Matcher
	// Preference is the VM's spec.preference; a missing one is refused
	// (ReasonPreferenceNotFound).
	Preference *Matcher
	// RestrictClusterInstancetypes limits the cluster instance types the
	// machine may name to AllowedClusterInstancetypes (names); another
	// one is refused (ReasonInstancetypeNotAllowed) without being looked
	// up. Namespaced instance types are always allowed.
	RestrictClusterInstancetypes bool
	AllowedClusterInstancetypes  []string
	// RunStrategy of the VirtualMachine (KubeVirt's spec.runStrategy); empty
	// means Always. See RunStrategyToApply for how power actions are kept.
	RunStrategy kubevirtv1.VirtualMachineRunStrategy
	// Disks, in order. The disk with Boot set (else the first) boots.
	Disks []Disk
	// ContainerDiskImage is an ephemeral boot disk pulled from a registry,
	// used only when Disks is empty.
	ContainerDiskImage string
	// ContainerDiskPullSecret names a Secret of the machine's namespace
	// (type kubernetes.io/dockerconfigjson) with which the node pulls
	// ContainerDiskImage: KubeVirt's containerDisk.imagePullSecret, which
	// virt-controller puts in the launcher pod's imagePullSecrets. Empty
	// pulls without one.
	ContainerDiskPullSecret string
	// PodNetwork attaches the pod network with masquerade binding.
	PodNetwork bool
	// PodNetworkIP configures the pod network's guest NIC; nil means DHCPv4
	// (KubeVirt's masquerade binding serves the guest a lease). Needs
	// PodNetwork.
	PodNetworkIP *IPConfig
	// NICs are Multus secondary interfaces, each with its guest IP
	// configuration.
	NICs []NIC
	// CloudInit is rendered into the <owner>-cloudinit Secret.
	CloudInit CloudInit
	// NodeSelector and Tolerations are copied to the VMI template.
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
	// AntiAffinity keeps this machine off nodes running another machine of
	// the owner's namespace with the same AntiAffinityGroup that also set
	// it. The term names neither namespaces nor a namespace selector, which
	// Kubernetes reads as "this pod's namespace" (core/v1 PodAffinityTerm).
	AntiAffinity bool
	// AntiAffinityGroup is the group (a label value) whose machines repel
	// each other; empty is DefaultAntiAffinityGroup. Needs AntiAffinity.
	AntiAffinityGroup string
	// AntiAffinityPreferred makes the rule soft: a preferred term of
	// PreferredAntiAffinityWeight instead of a required one, so the
	// machine still runs when every node has one of its group.
	AntiAffinityPreferred bool
	// EvictionStrategy is copied to the VMI template's evictionStrategy
	// (KubeVirt's None, LiveMigrate, LiveMigrateIfPossible or External);
	// empty leaves the field unset, so the KubeVirt CR's
	// spec.configuration.evictionStrategy applies.
	EvictionStrategy kubevirtv1.EvictionStrategy
	// Unplug are NICs being unplugged from the running instance (PlanLive
	// fills it; callers leave it empty): BuildVM keeps them, state absent,
	// after the NICs.
	Unplug []Unplug
}

// antiAffinityGroup is the KeyAntiAffinity label value of m.
func (m Machine) antiAffinityGroup() string {
	if m.AntiAffinityGroup == "" {
		return DefaultAntiAffinityGroup
	}
	return m.AntiAffinityGroup
}

// Disk is a volume attached to the machine.
type Disk struct {
	// Name of the disk and volume inside the VM.
	Name string
	// ClaimName is the PVC or DataVolume name.
	ClaimName string
	// DataVolume selects the dataVolume volume source instead of
	// persistentVolumeClaim.
	DataVolume bool
	// Boot puts this disk first with bootOrder 1.
	Boot bool
	// Hotpluggable writes the volume with hotpluggable: true, so KubeVirt
	// attaches it to (and detaches it from) a running instance; Reconcile
	// sets it (PlanLive), callers leave it false.
	Hotpluggable bool
}

// NIC is a Multus secondary interface.
type NIC struct {
	// Name of the interface and network in the VM spec; also the guest
	// interface name set by cloud-init (keep it at most 15 characters).
	Name string
	// NAD is the NetworkAttachmentDefinition, "namespace/name" or "name".
	NAD string
	// MAC is the guest MAC address; empty lets KubeVirt choose one.
	MAC string
	// Binding is bridge (default when empty) or sriov.
	Binding Binding
	// IP configures the guest NIC through cloud-init network data; nil
	// leaves it unconfigured. cloud-init finds the guest NIC by its MAC, so
	// IP needs MAC.
	IP *IPConfig
}

// CloudInit is the guest configuration delivered through NoCloud.
type CloudInit struct {
	// Hostname of the guest; empty means the machine name.
	Hostname string
	// User is created by cloud-init; nil keeps the image's default user.
	User *User
	// SSHKeys are authorized for User, or for the image's default user when
	// User is nil.
	SSHKeys []string
	// SkipGuestAgent leaves the QEMU guest agent alone. By default the user
	// data installs the qemu-guest-agent package and enables and starts its
	// service, because KubeVirt learns the addresses of bridge- and
	// SR-IOV-bound NICs only from the agent. Set it for images that ship the
	// agent already or cannot install packages (no package mirror reachable).
	SkipGuestAgent bool
	// PropagateSSHKeys also keeps SSHKeys in the running guest: the lib
	// writes them to the Secret <owner>-sshkeys and the VM's
	// accessCredentials name it with KubeVirt's qemuGuestAgent propagation
	// for User (see accesscredentials.go), so a key removed from SSHKeys is
	// removed from the user's authorized_keys while the guest runs, and one
	// added is added. Needs User and a guest agent that supports it;
	// KubeVirt mounts the Secret at start, so a running VM gets it after a
	// restart (RestartRequired).
	PropagateSSHKeys bool
	// Salt for hashing User.Password (crypt base64 alphabet, at most 16
	// characters). Empty derives one from the owner's UID (or namespace and
	// name) and the user name, so the hash is stable across reconciles.
	Salt string
}

// User is a guest account.
type User struct {
	Name string
	// Password is hashed with SHA-512 crypt; it never leaves the lib.
	Password string
	// PasswordHash is used as is when set (takes precedence over Password).
	PasswordHash string
	// Sudo is a sudoers rule, e.g. "ALL=(ALL) NOPASSWD:ALL".
	Sudo   string
	Shell  string
	Groups []string
	// LockPasswd; nil means false when a password is set, else cloud-init's
	// default (locked).
	LockPasswd *bool
}

// IPConfig is the guest IP configuration of one NIC (NIC.IP, or
// Machine.PodNetworkIP for the pod network's).
type IPConfig struct {
	// Mode is dhcp (default when empty) or static.
	Mode NetworkMode
	// Addresses in CIDR form, for static mode.
	Addresses []string
	// Gateway is the NIC's router (IPv4 or IPv6). It becomes the default
	// route of its address family only when this NIC carries that default
	// route (see RenderNetworkData); otherwise it is not used and the NIC
	// reaches only its own subnet.
	Gateway string
	// DefaultRoute asks for this NIC to carry the default route (of its
	// gateway's family; IPv4 for dhcp mode), taking it from the pod network.
	// At most one NIC may set it; in static mode it needs Gateway.
	DefaultRoute bool
	// DNS servers.
	DNS []string
}

// ErrKubeVirtNotInstalled is returned by Reconcile when the API server does
// not serve the KubeVirt VirtualMachine or VirtualMachineInstance kinds.
var ErrKubeVirtNotInstalled = errors.New("KubeVirt is not installed: no VirtualMachine kind in the cluster")

// Error prefixes.
const (
	errApplySecret        = "cannot apply cloud-init Secret"
	errApplySSHKeysSecret = "cannot apply SSH keys Secret"
	errApplyVM            = "cannot apply VirtualMachine"
	errGetVM              = "cannot get VirtualMachine"
	errGetVMI             = "cannot get VirtualMachineInstance"
	errGetSSHSecret       = "cannot get SSH key Secret"
	errGetPasswordSecret  = "cannot get password Secret"
	errBuildCloudIni      = "cannot build cloud-init"
)

// InvalidInputError says an input field has a value the lib cannot use.
type InvalidInputError struct {
	Field   string
	Message string
}

func (e *InvalidInputError) Error() string { return fmt.Sprintf("invalid %s: %s", e.Field, e.Message) }

// SecretNotFoundError is wrapped by ReadSSHKeys' and ReadPassword's
// failure when the Secret is missing. Kind names the Secret's use ("SSH
// key", "password").
type SecretNotFoundError struct {
	Kind, Namespace, Name string
}

func (e *SecretNotFoundError) Error() string {
	return fmt.Sprintf("%s Secret %s/%s not found", e.Kind, e.Namespace, e.Name)
}

// SecretKeyNotFoundError is wrapped by ReadPassword's failure when the Secret has no
// such key, or an empty value.
type SecretKeyNotFoundError struct {
	Namespace, Name, Key string
}

func (e *SecretKeyNotFoundError) Error() string {
	return fmt.Sprintf("Secret %s/%s has no non-empty key %q", e.Namespace, e.Name, e.Key)
}

// SecretNotOptedInError is wrapped by ReadSSHKeys' and ReadPassword's
// failure when the Secret does not carry the opt-in label. Kind names the
// Secret's use ("SSH key", "password").
type SecretNotOptedInError struct {
	Kind, Namespace, Name, Label string
}

func (e *SecretNotOptedInError) Error() string {
	return fmt.Sprintf("%s Secret %s/%s is not labelled %s=true", e.Kind, e.Namespace, e.Name, e.Label)
}
