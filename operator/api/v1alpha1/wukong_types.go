package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WukongSpec is the virtual machine a user asks for.
//
// Field names follow the original Wukong design so existing manifests keep
// working; fields added since are optional.
//
// +kubebuilder:validation:XValidation:rule="!has(self.instancetype) || (!has(self.cpu) && !has(self.memory))",message="spec.cpu and spec.memory cannot be set with spec.instancetype: the instance type sizes the VM (remove cpu and memory, or instancetype)",fieldPath=".instancetype"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.osImage) || (has(self.osImage) && self.osImage == oldSelf.osImage)",message="osImage is immutable once set: add a new disk with an image instead"
// +kubebuilder:validation:XValidation:rule="(has(self.disks) && size(self.disks) > 0) || !has(self.osImage) || !(self.osImage.startsWith('http://') || self.osImage.startsWith('https://'))",message="an http(s) osImage cannot boot as a container disk (a container runtime pulls only registry images): add a disk for it to be imported into, or use a registry image",fieldPath=".osImage"
// +kubebuilder:validation:XValidation:rule="!has(self.startStrategy) || !has(self.startStrategy.runStrategy) || !has(self.startStrategy.autoStart) || (self.startStrategy.autoStart ? !(self.startStrategy.runStrategy in ['Halted', 'Manual']) : self.startStrategy.runStrategy in ['Halted', 'Manual'])",message="startStrategy.runStrategy conflicts with startStrategy.autoStart: autoStart false allows only Halted or Manual, autoStart true forbids them",fieldPath=".startStrategy.runStrategy"
// +kubebuilder:validation:XValidation:rule="!has(self.startStrategy) || !has(self.startStrategy.runStrategy) || self.startStrategy.runStrategy == 'Halted' || !has(self.highAvailability) || !has(self.highAvailability.restartPolicy) || (self.highAvailability.restartPolicy == 'Never' ? self.startStrategy.runStrategy in ['Once', 'Manual'] : {'Always': 'Always', 'OnFailure': 'RerunOnFailure'}[self.highAvailability.restartPolicy] == self.startStrategy.runStrategy)",message="startStrategy.runStrategy conflicts with highAvailability.restartPolicy (Always goes with Always, OnFailure with RerunOnFailure, Never with Once or Manual)",fieldPath=".highAvailability.restartPolicy"
// +kubebuilder:validation:XValidation:rule="!has(self.osClusterImage) || !has(self.osImage)",message="osClusterImage and osImage are mutually exclusive: the boot disk has one source",fieldPath=".osClusterImage"
// +kubebuilder:validation:XValidation:rule="!has(self.osClusterImage) || (has(self.disks) && size(self.disks) > 0)",message="osClusterImage needs a disk to clone the image into (a catalog image is a volume, not a container disk)",fieldPath=".osClusterImage"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.osClusterImage) || (has(self.osClusterImage) && self.osClusterImage == oldSelf.osClusterImage)",message="osClusterImage is immutable once set: add a new disk with clusterImage instead",fieldPath=".osClusterImage"
// +kubebuilder:validation:XValidation:rule="!has(self.osImageAccess) || has(self.osImage)",message="osImageAccess applies only to osImage",fieldPath=".osImageAccess"
// +kubebuilder:validation:XValidation:rule="!has(self.osImagePullSecret) || (has(self.osImage) && (!has(self.disks) || size(self.disks) == 0))",message="osImagePullSecret applies only to osImage booted as a container disk (a Wukong without disks); CDI imports osImage into a disk with spec.osImageAccess",fieldPath=".osImagePullSecret"
type WukongSpec struct {
	// CPU is the number of virtual CPUs (KubeVirt sockets of one core
	// each). On a running VM KubeVirt adds CPUs live up to the maximum in
	// status.resources.maxCPU; fewer CPUs, or more than that, take effect
	// at the next restart (condition RestartRequired says so). Unset, the
	// VM gets 1 (a Wukong written before instance types existed has 1
	// stored, the CRD's default then). Mutually exclusive with
	// instancetype.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	// +optional
	CPU int32 `json:"cpu,omitempty"`

	// Memory is the guest memory, a quantity such as 2Gi. On a running VM
	// KubeVirt adds memory live up to status.resources.maxMemory (guests of
	// at least 1Gi, in 2Mi steps); less than it started with, or more than
	// that, takes effect at the next restart (RestartRequired). Unset, the
	// VM gets 1Gi (stored as the CRD's default in Wukongs written before
	// instance types existed). Mutually exclusive with instancetype.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="memory must be a quantity greater than zero, e.g. 2Gi"
	// +optional
	Memory resource.Quantity `json:"memory,omitzero"`

	// Instancetype sizes the VM with a KubeVirt instance type instead of
	// cpu and memory (which must then be unset: refused at admission).
	// The VirtualMachine references it (spec.instancetype) and KubeVirt
	// expands it; status.resources shows the cpu and memory it resolved
	// to. A missing instance type, or a cluster instance type the
	// namespace may not use (the Namespace annotation
	// vm.novasphere.dev/allowed-cluster-instancetypes), makes the Wukong
	// Stalled naming spec.instancetype.name.
	// +optional
	Instancetype *InstancetypeRef `json:"instancetype,omitempty"`

	// Preference names a KubeVirt preference the VirtualMachine references
	// (spec.preference). A missing one makes the Wukong Stalled naming
	// spec.preference.name.
	// +optional
	Preference *PreferenceRef `json:"preference,omitempty"`

	// OSImage is the operating system image. With disks it is imported into
	// the boot disk (by CDI) when that disk names no image (nor claimName) of its own: an
	// http(s):// URL or a registry image (docker://… or a bare reference).
	// Without disks it boots as an ephemeral container disk, which must be a
	// registry image: the VM's containerDisk gets the plain reference (no
	// docker:// scheme; registry port, tag and digest kept; a name without
	// registry qualified as Docker does, fedora:40 -> docker.io/library/fedora:40).
	// An http(s) URL without disks is refused at admission; an invalid
	// reference makes the Wukong Stalled naming spec.osImage.
	// Immutable once set.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^\S+$`
	// +optional
	OSImage string `json:"osImage,omitempty"`

	// OSImageAccess is how CDI's importer reaches osImage when it is
	// imported into the boot disk: a CA bundle ConfigMap and a login
	// Secret of this namespace (see ImageAccess). It does not apply to a
	// container disk (see osImagePullSecret) nor to a disk with an image
	// of its own (see spec.disks[i].imageAccess).
	// +optional
	OSImageAccess *ImageAccess `json:"osImageAccess,omitempty"`

	// OSImagePullSecret names a Secret of this namespace of type
	// kubernetes.io/dockerconfigjson with which the node pulls osImage when
	// it boots as a container disk (a Wukong without disks): KubeVirt's
	// containerDisk.imagePullSecret, which virt-controller adds to the
	// launcher pod's imagePullSecrets. A missing Secret makes the Wukong
	// Stalled (SecretNotFound) naming this field, and the VM is not written
	// until it is there (the node could not pull the image). With disks
	// it does not apply (CDI imports osImage: see osImageAccess).
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	OSImagePullSecret string `json:"osImagePullSecret,omitempty"`

	// OSClusterImage names a ClusterImage (a golden image an administrator
	// declared) for the boot disk, as osImage names a URL: the boot disk,
	// when it names no image, claimName, cloneFrom or clusterImage of its
	// own, is a CDI clone of the image's golden copy exactly as if it had
	// clusterImage set (see spec.disks[i].clusterImage: the same namespace
	// rule and message, a size at least the image's,
	// status.volumes[].cloneType), and a refusal names this field. It needs
	// a disk (a catalog image is a volume, not a container disk) and is
	// mutually exclusive with osImage. Immutable once set.
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	OSClusterImage string `json:"osClusterImage,omitempty"`

	// SSHKeySecret names a Secret in the same namespace whose values are SSH
	// public keys (one or more per value, one per line). The Secret must
	// carry the label vm.novasphere.dev/ssh-authorized-keys: "true";
	// without it, or when it is missing, the Wukong is Stalled
	// (SecretNotFound) naming spec.sshKeySecret. Only lines that parse as
	// SSH public keys in authorized_keys format are authorized for
	// cloudInitUser (or the image's default user when none is given); other
	// lines are dropped, counted in a Warning Event SSHKeyLinesDropped.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	SSHKeySecret string `json:"sshKeySecret,omitempty"`

	// CloudInitUser is the login user cloud-init creates in the guest.
	// +optional
	CloudInitUser *CloudInitUser `json:"cloudInitUser,omitempty"`

	// Networks are the secondary NICs, attached through Multus. The pod
	// network is always the first NIC unless podNetwork is false.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.filter(n, has(n.ipConfig) && has(n.ipConfig.defaultRoute) && n.ipConfig.defaultRoute).size() <= 1",message="at most one network may set ipConfig.defaultRoute: the guest has exactly one default route"
	// +optional
	Networks []NetworkSpec `json:"networks,omitempty"`

	// PodNetwork attaches the VM to the cluster's pod network (masquerade)
	// as its first NIC. Defaults to true.
	// +optional
	PodNetwork *bool `json:"podNetwork,omitempty"`

	// Disks are the VM's disks: blank, or imported from an image by CDI.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.filter(d, has(d.boot) && d.boot).size() <= 1",message="at most one disk may have boot: true"
	// +optional
	Disks []DiskSpec `json:"disks,omitempty"`

	// HighAvailability controls restarts and placement.
	// +optional
	HighAvailability *HighAvailability `json:"highAvailability,omitempty"`

	// StartStrategy controls whether and how the VM runs.
	// +optional
	StartStrategy *StartStrategy `json:"startStrategy,omitempty"`

	// EvictionStrategy is what KubeVirt does with the VM when its node is
	// drained (an eviction of the virt-launcher pod, e.g. `kubectl drain`),
	// copied to the VirtualMachine's spec.template.spec.evictionStrategy
	// (KubeVirt's field and values, kubevirt.io/api core/v1
	// EvictionStrategy): LiveMigrate (the eviction is refused and the VM
	// migrates to another node; a VM that cannot migrate blocks the drain),
	// LiveMigrateIfPossible (migrates when it can, else is shut down like
	// None), External (the eviction is refused and the VMI marked
	// status.evacuationNodeName for an external controller to act on) or
	// None (the pod is evicted: the guest is shut down and its run
	// strategy decides whether it starts again elsewhere). Empty uses the
	// operator's default (--default-eviction-strategy, chart value
	// defaultEvictionStrategy), and without one the field stays unset on
	// the VM, so the KubeVirt CR's spec.configuration.evictionStrategy
	// applies, and with none there either KubeVirt evicts the pod as for
	// None (kubevirt pkg/util/migrations VMIEvictionStrategy). A change
	// reaches a running VMI as KubeVirt rolls template changes out (it may
	// report RestartRequired).
	// +kubebuilder:validation:Enum=LiveMigrate;LiveMigrateIfPossible;External;None
	// +optional
	EvictionStrategy string `json:"evictionStrategy,omitempty"`

	// GuestAgent controls the QEMU guest agent in the guest. By default
	// cloud-init installs and starts it: KubeVirt learns the IP addresses of
	// secondary NICs (bridge, SR-IOV) only from the agent.
	// +optional
	GuestAgent *GuestAgent `json:"guestAgent,omitempty"`
}

// GuestAgent controls the QEMU guest agent (qemu-guest-agent).
type GuestAgent struct {
	// Install makes cloud-init install the qemu-guest-agent package on first
	// boot (after refreshing the package index, so the guest needs a
	// reachable package mirror) and enable and start its service. Defaults
	// to true; set false for images that ship the agent already or cannot
	// install packages. Without a running agent, status.networks[] shows a
	// secondary NIC's static address as ipSource Configured and a DHCP
	// one's not at all.
	// +optional
	Install *bool `json:"install,omitempty"`
}

// CloudInitUser is a guest user created by cloud-init.
//
// +kubebuilder:validation:XValidation:rule="[has(self.password), has(self.passwordHash), has(self.passwordSecretRef)].filter(x, x).size() <= 1",message="set one of passwordSecretRef, password and passwordHash"
type CloudInitUser struct {
	// Name is the user name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_-]*$`
	Name string `json:"name"`

	// Password is a plain-text password. It is hashed (SHA-512 crypt) before
	// it is written to the cloud-init Secret and never reaches the
	// VirtualMachine.
	//
	// This field is deprecated: it stays readable in this object by anyone who may read
	// Wukongs (the aggregated view role included, which Kubernetes keeps
	// away from Secrets); use passwordSecretRef. Setting it draws an
	// admission warning where the chart's admission policies are installed.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Password string `json:"password,omitempty"`

	// PasswordSecretRef takes the password from a key of a Secret in the
	// Wukong's namespace, so it is not readable in the Wukong. The Secret
	// must carry the label vm.novasphere.dev/cloud-init-password: "true";
	// without it, or when it is missing, the Wukong is Stalled
	// (SecretNotFound) naming spec.cloudInitUser.passwordSecretRef, with the
	// same message. A value in crypt(3) modular format ($id$..., with id 1,
	// 2a, 2b, 2y, 5, 6, 7, y or gy: what mkpasswd and openssl passwd write)
	// is used as the hash as it is; anything else is a plain password,
	// hashed with SHA-512 crypt like password. One trailing newline (as
	// kubectl create secret --from-file keeps) is not part of the value.
	// Mutually exclusive with password and passwordHash.
	// +optional
	PasswordSecretRef *PasswordSecretRef `json:"passwordSecretRef,omitempty"`

	// PasswordHash is a crypt(3) hash (e.g. from `mkpasswd -m sha-512`).
	//
	// This field is deprecated: it is readable in this object by anyone who may read Wukongs
	// (an offline guessing target); use passwordSecretRef. Setting it draws
	// an admission warning where the chart's admission policies are
	// installed.
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.startsWith('$')",message="passwordHash must be a crypt(3) hash such as $6$salt$hash"
	// +optional
	PasswordHash string `json:"passwordHash,omitempty"`

	// Sudo is the sudoers rule for the user, e.g. "ALL=(ALL) NOPASSWD:ALL".
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Sudo string `json:"sudo,omitempty"`

	// Shell is the login shell, e.g. /bin/bash.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Shell string `json:"shell,omitempty"`

	// Groups are supplementary groups.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=32
	// +optional
	Groups []string `json:"groups,omitempty"`

	// LockPasswd locks password login. cloud-init's default is true: set it to
	// false for a password to be usable.
	// +optional
	LockPasswd *bool `json:"lockPasswd,omitempty"`
}

// PasswordSecretRef names a key of a Secret in the Wukong's namespace.
type PasswordSecretRef struct {
	// Name is the Secret's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Key is the key of the Secret's data holding the password.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +kubebuilder:default=password
	// +optional
	Key string `json:"key,omitempty"`
}

// NetworkType is the CNI plugin behind a NIC.
// +kubebuilder:validation:Enum=bridge;macvlan;sriov;ovs
type NetworkType string

// Network types.
const (
	NetworkTypeBridge  NetworkType = "bridge"
	NetworkTypeMacvlan NetworkType = "macvlan"
	NetworkTypeSRIOV   NetworkType = "sriov"
	NetworkTypeOVS     NetworkType = "ovs"
)

// NetworkSpec is one secondary NIC.
//
// +kubebuilder:validation:XValidation:rule="!has(self.nadName) || (!has(self.bridgeName) && !has(self.vlanId) && !has(self.physicalInterface) && !has(self.resourceName))",message="bridgeName, vlanId, physicalInterface and resourceName configure the NetworkAttachmentDefinition Wukong creates; they cannot be combined with nadName"
// +kubebuilder:validation:XValidation:rule="has(self.nadName) || self.type != 'ovs' || has(self.bridgeName)",message="bridgeName is required for ovs networks unless nadName is set",fieldPath=".bridgeName"
// +kubebuilder:validation:XValidation:rule="!has(self.physicalInterface) || self.type in ['bridge', 'ovs', 'macvlan']",message="physicalInterface applies to bridge, ovs and macvlan networks",fieldPath=".physicalInterface"
// +kubebuilder:validation:XValidation:rule="!has(self.resourceName) || self.type == 'sriov'",message="resourceName applies to sriov networks",fieldPath=".resourceName"
// +kubebuilder:validation:XValidation:rule="!has(self.vlanId) || self.type != 'macvlan'",message="vlanId is not supported for macvlan networks: use a VLAN sub-interface as physicalInterface",fieldPath=".vlanId"
type NetworkSpec struct {
	// Name of the NIC, unique in the Wukong; also the guest interface name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Type is the kind of NIC: bridge, ovs and sriov use the CNI plugin of
	// that name; macvlan gives the guest its own MAC directly on
	// physicalInterface through KubeVirt's macvtap network binding plugin (a
	// macvtap NetworkAttachmentDefinition), since KubeVirt cannot bind a
	// macvlan pod interface. The KubeVirt CR must register the macvtap
	// binding; otherwise the Wukong is Stalled naming this field.
	// Every type reaches the nodes' networks only through an
	// administrator's NodeBridge declared for this namespace: bridge and
	// ovs a NodeBridge named bridgeName, macvlan one of type macvtap named
	// physicalInterface, sriov one of type sriov with this NIC's
	// resourceName. Anything else is Stalled (NodeBridgeNotAllowed) naming
	// the field, and nothing is written for the NIC. nadName is the
	// exception: the namespace's own NetworkAttachmentDefinition reaches what
	// its author made it reach.
	// +kubebuilder:default=bridge
	// +optional
	Type NetworkType `json:"type,omitempty"`

	// NADName names an existing NetworkAttachmentDefinition ("name" in the
	// Wukong's namespace, or "namespace/name") to use as is. Wukong never
	// modifies or deletes it. When empty, Wukong creates one named
	// <wukong>-<nic>.
	// +kubebuilder:validation:MaxLength=317
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	NADName string `json:"nadName,omitempty"`

	// VLANID tags the NIC's traffic (bridge, ovs, sriov): the NIC is an
	// access port of this VLAN, which must be in its NodeBridge's
	// allowedVLANs. Without it the NIC is an access port of the
	// NodeBridge's nativeVLAN (an untagged sriov NIC needs one declared).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4094
	// +optional
	VLANID int32 `json:"vlanId,omitempty"`

	// BridgeName is the node bridge the NIC plugs into (bridge, ovs), or the
	// node interface for macvlan when physicalInterface is empty. A node
	// bridge must be declared by an administrator (a NodeBridge of that
	// name whose namespaceSelector matches this namespace). A bridge NIC
	// without bridgeName or nadName uses br-<name> (the original design's
	// default); an ovs NIC needs it.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][-a-zA-Z0-9_.]*$`
	// +optional
	BridgeName string `json:"bridgeName,omitempty"`

	// PhysicalInterface, for bridge and ovs networks, is checked against the
	// uplinks of the administrator's NodeBridge (a mismatch is Stalled
	// naming this field); it does not configure the nodes. For macvlan it is
	// the node interface the guest's macvtap device is created on
	// (device-plugin resource macvtap.network.kubevirt.io/<physicalInterface>),
	// which an administrator must declare (a NodeBridge of type macvtap of
	// that name, selecting this namespace).
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[a-zA-Z0-9][-a-zA-Z0-9_.]*$`
	// +optional
	PhysicalInterface string `json:"physicalInterface,omitempty"`

	// ResourceName is the SR-IOV device plugin resource (sriov only), e.g.
	// intel.com/sriov_netdevice (the default). An administrator must declare
	// it for this namespace (a NodeBridge of type sriov with this
	// resourceName), with the VLANs tenants may use.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ResourceName string `json:"resourceName,omitempty"`

	// IPConfig is the guest's address on this NIC, delivered by cloud-init.
	// +optional
	IPConfig *IPConfig `json:"ipConfig,omitempty"`
}

// IPMode is how a NIC gets its address.
// +kubebuilder:validation:Enum=static;dhcp
type IPMode string

// IP modes.
const (
	IPModeStatic IPMode = "static"
	IPModeDHCP   IPMode = "dhcp"
)

// IPConfig is a NIC's guest address configuration, delivered by cloud-init
// network data (version 2, matched by MAC).
//
// The guest gets exactly one default route per address family: the NIC with
// defaultRoute: true when it has one (static with a gateway of that family,
// or dhcp for IPv4); else, for IPv4, the pod network when it is on (it takes
// its default route from KubeVirt's DHCP); else the first network, in list
// order, with a gateway of that family (or in dhcp mode, for IPv4). Every
// other NIC gets no default route: its gateway is not used (it reaches its
// own subnet) and a dhcp NIC, the pod network included, ignores its lease's
// routers (dhcp4-overrides use-routes: false).
//
// +kubebuilder:validation:XValidation:rule="self.mode != 'static' || has(self.address)",message="address is required when mode is static",fieldPath=".address"
// +kubebuilder:validation:XValidation:rule="!has(self.defaultRoute) || !self.defaultRoute || self.mode == 'dhcp' || has(self.gateway)",message="defaultRoute needs a gateway when mode is static",fieldPath=".gateway"
// +kubebuilder:validation:XValidation:rule="self.mode != 'dhcp' || (!has(self.address) && !has(self.gateway))",message="address and gateway cannot be set when mode is dhcp",fieldPath=".address"
type IPConfig struct {
	// Mode is static or dhcp.
	// +kubebuilder:default=dhcp
	// +optional
	Mode IPMode `json:"mode,omitempty"`

	// Address is the static address in CIDR form, e.g. 192.168.10.5/24.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="address must be in CIDR form, e.g. 192.168.10.5/24"
	// +optional
	Address string `json:"address,omitempty"`

	// Gateway is the router's IP address (IPv4 or IPv6, static mode). It
	// becomes the guest's default route of its family only when this NIC
	// carries it: it sets defaultRoute; or no network does, the pod network
	// does not give that family's default route (it gives IPv4 when on), and
	// this is the first network with a gateway of that family (a dhcp
	// network counts for IPv4). Otherwise it is not used.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="gateway must be an IP address"
	// +optional
	Gateway string `json:"gateway,omitempty"`

	// DefaultRoute makes this NIC carry the guest's default route (via
	// gateway in static mode, via the DHCP lease's router in dhcp mode),
	// instead of the pod network or the first network with a gateway. At
	// most one network may set it. With the pod network on, the guest then
	// reaches the pod network only on its own subnet (cluster Services
	// through it need their own routes).
	// +optional
	DefaultRoute bool `json:"defaultRoute,omitempty"`

	// DNSServers are name server IP addresses.
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(s, isIP(s))",message="dnsServers must be IP addresses"
	// +optional
	DNSServers []string `json:"dnsServers,omitempty"`
}

// DiskSpec is one VM disk.
//
// +kubebuilder:validation:XValidation:rule="!has(self.size) || !has(oldSelf.size) || !isQuantity(self.size) || !isQuantity(oldSelf.size) || quantity(self.size).compareTo(quantity(oldSelf.size)) >= 0",message="size cannot shrink",fieldPath=".size"
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="storageClassName is immutable",fieldPath=".storageClassName"
// +kubebuilder:validation:XValidation:rule="has(self.image) == has(oldSelf.image) && (!has(self.image) || self.image == oldSelf.image)",message="image is immutable",fieldPath=".image"
// +kubebuilder:validation:XValidation:rule="has(self.size) || has(self.claimName)",message="size is required unless claimName is set",fieldPath=".size"
// +kubebuilder:validation:XValidation:rule="!has(self.claimName) || !has(self.image)",message="claimName and image are mutually exclusive: the claim named by claimName is used as it is, nothing is imported into it",fieldPath=".claimName"
// +kubebuilder:validation:XValidation:rule="!has(self.claimName) || !has(self.storageClassName)",message="claimName and storageClassName are mutually exclusive: the claim named by claimName keeps its own class",fieldPath=".claimName"
// +kubebuilder:validation:XValidation:rule="!has(self.claimName) || !has(self.deletionPolicy) || self.deletionPolicy == 'Retain'",message="deletionPolicy Delete does not apply to a claim named by claimName: Wukong never deletes a claim it did not create (omit deletionPolicy)",fieldPath=".deletionPolicy"
// +kubebuilder:validation:XValidation:rule="has(self.claimName) == has(oldSelf.claimName) && (!has(self.claimName) || self.claimName == oldSelf.claimName)",message="claimName is immutable: add a new disk instead",fieldPath=".claimName"
// +kubebuilder:validation:XValidation:rule="!has(self.cloneFrom) || !has(self.image)",message="cloneFrom and image are mutually exclusive: a disk is imported from an image or cloned, not both",fieldPath=".cloneFrom"
// +kubebuilder:validation:XValidation:rule="has(self.cloneFrom) == has(oldSelf.cloneFrom) && (!has(self.cloneFrom) || self.cloneFrom == oldSelf.cloneFrom)",message="cloneFrom is immutable: add a new disk to clone another source",fieldPath=".cloneFrom"
// +kubebuilder:validation:XValidation:rule="!has(self.claimName) || !has(self.cloneFrom)",message="claimName and cloneFrom are mutually exclusive: a disk is an existing claim or a clone, not both",fieldPath=".claimName"
// +kubebuilder:validation:XValidation:rule="!has(self.imageAccess) || has(self.image)",message="imageAccess applies only to a disk's own image (osImage imported into the boot disk uses spec.osImageAccess)",fieldPath=".imageAccess"
// +kubebuilder:validation:XValidation:rule="!has(self.clusterImage) || (!has(self.image) && !has(self.claimName) && !has(self.cloneFrom))",message="clusterImage is mutually exclusive with image, claimName and cloneFrom: a disk is cloned from one catalog image, imported, an existing claim or a clone of a disk",fieldPath=".clusterImage"
// +kubebuilder:validation:XValidation:rule="has(self.clusterImage) == has(oldSelf.clusterImage) && (!has(self.clusterImage) || self.clusterImage == oldSelf.clusterImage)",message="clusterImage is immutable: add a new disk for another image",fieldPath=".clusterImage"
type DiskSpec struct {
	// Name of the disk, unique in the Wukong.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`

	// Size of the disk, a quantity such as 20Gi. It may grow (when the
	// StorageClass allows expansion), never shrink. Required, except with
	// claimName: then it is optional and only a check, never a resize: the
	// claim's request (spec.resources.requests.storage) must be at least
	// size, else the Wukong is Stalled (ClaimTooSmall) naming this field
	// until the claim's owner grows the claim.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="size must be a quantity greater than zero, e.g. 20Gi"
	// +optional
	Size resource.Quantity `json:"size,omitzero"`

	// StorageClassName is the StorageClass; empty uses the cluster default.
	// Immutable.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	StorageClassName string `json:"storageClassName,omitempty"`

	// Boot marks the boot disk (boot order 1). At most one disk; when none
	// is marked, the first disk boots.
	// +optional
	Boot bool `json:"boot,omitempty"`

	// Image is imported into the disk by CDI: an http(s):// URL or a registry
	// image (docker://… or a bare reference). Empty makes a blank disk.
	// Immutable.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^\S+$`
	// +optional
	Image string `json:"image,omitempty"`

	// ImageAccess is how CDI's importer reaches image: a CA bundle
	// ConfigMap and a login Secret of this namespace (see ImageAccess).
	// Only with image (the boot disk importing osImage uses
	// spec.osImageAccess).
	// +optional
	ImageAccess *ImageAccess `json:"imageAccess,omitempty"`

	// DeletionPolicy is what happens to the disk's claim when the Wukong is
	// deleted, or when the disk is removed from spec.disks (once the
	// running machine no longer uses it): Delete (the default) deletes it with the Wukong (its
	// DataVolume and claim are the Wukong's children); Retain keeps the
	// claim and its data: the operator removes every owner reference that
	// would delete it (the Wukong's and its DataVolume's, as CDI hands a
	// claim over when it garbage-collects a DataVolume), labels it
	// vm.novasphere.dev/retained-from-wukong=<wukong> and
	// vm.novasphere.dev/retained-from-disk=<disk>, and deletes the
	// DataVolume. The claim can then be used by a new Wukong through
	// claimName. While a disk is Retain the Wukong carries the finalizer
	// vm.novasphere.dev/retain-disks. It may change either way at any time
	// before the Wukong is deleted. It does not apply to a claim named by
	// claimName (Wukong never deletes one): only Retain, a no-op, is
	// accepted there.
	// +kubebuilder:validation:Enum=Delete;Retain
	// +optional
	DeletionPolicy DiskDeletionPolicy `json:"deletionPolicy,omitempty"`

	// ClaimName uses an existing PersistentVolumeClaim of the Wukong's
	// namespace as the disk, by its name (KubeVirt's
	// persistentVolumeClaim.claimName): a claim a user made, or one a
	// deleted Wukong retained. Wukong never creates, labels, resizes or
	// deletes it, whatever deletionPolicy says; it only reads it and
	// attaches it to the VM. A claim that does not exist, is being deleted,
	// is controlled by another object (a DataVolume, another Wukong: a
	// disk Wukong made for some Wukong is never taken), or is named by a
	// disk of another Wukong created before this one, makes the Wukong
	// Stalled (ClaimNotFound, ClaimInUse) naming this field, and it
	// proceeds once the claim is there (the claim is not watched: it is
	// looked at again after a minute or more, or at once on any change to
	// the Wukong). Mutually exclusive with image and storageClassName;
	// osImage is not imported into it. Immutable.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	ClaimName string `json:"claimName,omitempty"`

	// CloneFrom makes the disk a CDI clone of a disk of another Wukong, or
	// of a disk captured by a WukongSnapshot, of this Wukong's namespace
	// (there is no namespace field: a Wukong clones only what its own
	// namespace holds). CDI chooses how to copy (status.volumes[].cloneType):
	// a CSI volume clone or a CSI snapshot where the StorageClass's driver
	// supports it, else a host-assisted copy by pods. size must be at least
	// the source disk's size (CDI refuses a smaller target:
	// pkg/controller/common ValidateRequestedCloneSize); a smaller one makes
	// the Wukong Stalled naming spec.disks[i].size. A source that is not
	// there (no such Wukong, or no such disk in it, in this namespace) makes
	// it Stalled naming the cloneFrom field, with the same message whatever
	// other namespaces hold. A source Wukong whose VM runs is waited for: CDI
	// clones a claim only while no running pod writes to it. The source is
	// never modified. Mutually exclusive with image and claimName; the boot disk with
	// cloneFrom does not take osImage. Immutable.
	// +optional
	CloneFrom *DiskCloneSource `json:"cloneFrom,omitempty"`

	// ClusterImage makes the disk a CDI clone of a golden image an
	// administrator declared (a ClusterImage, by name): the disk's
	// DataVolume has spec.sourceRef to the image's DataSource in the
	// catalog namespace, of the disk's StorageClass when the image has a
	// copy there, else of its first class. CDI chooses how to copy
	// (status.volumes[].cloneType: csi-clone, snapshot or copy). An image
	// that is not declared, or not for this namespace, makes the Wukong
	// Stalled (ClusterImageNotAllowed) naming this field, with the same
	// message either way; until the golden copy is ready the disk waits.
	// size must be at least the image's size. Mutually exclusive with
	// image, claimName and cloneFrom; the boot disk with clusterImage does
	// not take osImage. Immutable.
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ClusterImage string `json:"clusterImage,omitempty"`
}

// DiskCloneSource is what a disk is cloned from: one disk of a Wukong, or
// one disk a WukongSnapshot captured, in the cloning Wukong's namespace.
//
// +kubebuilder:validation:XValidation:rule="has(self.wukong) != has(self.snapshot)",message="cloneFrom needs exactly one of wukong and snapshot"
type DiskCloneSource struct {
	// Wukong names the Wukong (in this namespace) whose disk is cloned.
	// CDI waits while that Wukong's VM runs (stop it, or clone from a
	// snapshot of it).
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Wukong string `json:"wukong,omitempty"`

	// Snapshot names the WukongSnapshot (in this namespace) whose captured
	// disk is cloned. The clone waits until the snapshot is readyToUse.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Snapshot string `json:"snapshot,omitempty"`

	// Disk is the name of the source's disk (a spec.disks name of the
	// source Wukong, or of the Wukong the snapshot was taken of). Empty
	// uses this disk's own name.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Disk string `json:"disk,omitempty"`
}

// SourceDisk is the source disk's name: Disk, else the cloning disk's own
// name.
func (c *DiskCloneSource) SourceDisk(own string) string {
	if c.Disk != "" {
		return c.Disk
	}
	return own
}

// DiskDeletionPolicy is what happens to a disk's claim when its Wukong is
// deleted.
type DiskDeletionPolicy string

// Disk deletion policies.
const (
	DiskDeletionPolicyDelete DiskDeletionPolicy = "Delete"
	DiskDeletionPolicyRetain DiskDeletionPolicy = "Retain"
)

// HighAvailability is restart and placement policy.
// +kubebuilder:validation:XValidation:rule="(!has(self.antiAffinityGroup) && !has(self.antiAffinityMode)) || (has(self.antiAffinity) && self.antiAffinity)",message="antiAffinityGroup and antiAffinityMode need antiAffinity: true",fieldPath=".antiAffinity"
type HighAvailability struct {
	// RestartPolicy is what happens when the guest stops: Always restarts it,
	// OnFailure restarts it only after a failure, Never leaves it stopped.
	// Used when startStrategy.runStrategy is not set.
	// +kubebuilder:validation:Enum=Always;OnFailure;Never
	// +optional
	RestartPolicy string `json:"restartPolicy,omitempty"`

	// AntiAffinity keeps this VM off nodes running another VM of a Wukong
	// in the same namespace and the same antiAffinityGroup that also asks
	// for anti-affinity. Pods of other namespaces never count: the
	// virt-launcher pod's podAntiAffinity term (topology key
	// kubernetes.io/hostname) sets neither namespaces nor
	// namespaceSelector, which Kubernetes reads as "this pod's namespace"
	// (API reference, core/v1 PodAffinityTerm).
	// +optional
	AntiAffinity bool `json:"antiAffinity,omitempty"`

	// AntiAffinityGroup names the set of this namespace's Wukongs that keep
	// apart: only Wukongs with the same group (and antiAffinity: true)
	// repel each other. It is the value of the VM pod's
	// vm.novasphere.dev/anti-affinity label. Empty is the namespace's
	// default group, whose label value is "true" (so a group named "true"
	// is the default group). Needs antiAffinity: true.
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	// +optional
	AntiAffinityGroup string `json:"antiAffinityGroup,omitempty"`

	// AntiAffinityMode is how hard the rule is. Required (the default)
	// leaves the VM unscheduled (Stalled, reason Unschedulable) while every
	// node runs a VM of its group; Preferred only scores the nodes without
	// one higher (a preferred term of weight 100, the most the API allows),
	// so the VM runs next to one of its group when there is no other room. They are
	// Kubernetes' requiredDuringSchedulingIgnoredDuringExecution and
	// preferredDuringSchedulingIgnoredDuringExecution: a running VM is
	// never moved. The scheduler also holds an incoming pod to the
	// required rules of the pods already running, so a Required member of
	// a group keeps every member of that group, Preferred ones included,
	// off its node: give a group one mode. Needs antiAffinity: true.
	// +kubebuilder:validation:Enum=Required;Preferred
	// +optional
	AntiAffinityMode string `json:"antiAffinityMode,omitempty"`

	// NodeSelector restricts the nodes the VM may run on (node labels, as
	// the VirtualMachine's spec.template.spec.nodeSelector). At most 64
	// entries; a key at most 317 characters and a value at most 63, the
	// longest a label key (253-character DNS prefix, "/", 63-character name)
	// and a label value can be (k8s.io/apimachinery/pkg/util/validation:
	// IsQualifiedName, IsValidLabelValue). The API server refuses more.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && size(self[k]) <= 63)",message="nodeSelector keys are label keys (at most 317 characters) and values label values (at most 63)"
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations let the VM run on tainted nodes (the VirtualMachine's
	// spec.template.spec.tolerations). At most 32; a key at most 317
	// characters and a value at most 63 (a taint's key and value are a
	// label key and value: k8s.io/kubernetes/pkg/apis/core/validation
	// validateTaints), operator and effect at most 16.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(t, (!has(t.key) || size(t.key) <= 317) && (!has(t.value) || size(t.value) <= 63) && (!has(t.operator) || size(t.operator) <= 16) && (!has(t.effect) || size(t.effect) <= 16))",message="a toleration's key is at most 317 characters, its value at most 63, operator and effect at most 16"
	// +listType=atomic
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
}

// Values of HighAvailability.AntiAffinityMode.
const (
	AntiAffinityRequired  = "Required"
	AntiAffinityPreferred = "Preferred"
)

// StartStrategy controls whether and how the VM runs.
type StartStrategy struct {
	// RunStrategy is KubeVirt's run strategy. When empty it follows autoStart
	// and highAvailability.restartPolicy (see the README's table).
	// +kubebuilder:validation:Enum=Always;RerunOnFailure;Manual;Halted;Once
	// +optional
	RunStrategy string `json:"runStrategy,omitempty"`

	// AutoStart starts the VM when it is created. Defaults to true; false
	// creates it stopped (Halted).
	// +optional
	AutoStart *bool `json:"autoStart,omitempty"`
}

// Phase is a one-word summary of a Wukong.
// +kubebuilder:validation:Enum=Pending;Creating;Running;Migrating;Restoring;Stopped;Error
type Phase string

// Phases.
const (
	// PhasePending: waiting for networks, volumes or input (see conditions).
	PhasePending Phase = "Pending"
	// PhaseCreating: the VirtualMachine exists and is starting.
	PhaseCreating Phase = "Creating"
	// PhaseRunning: the guest runs and KubeVirt reports it ready.
	PhaseRunning Phase = "Running"
	// PhaseMigrating: the guest runs and KubeVirt is live-migrating it to
	// another node (status.migration).
	PhaseMigrating Phase = "Migrating"
	// PhaseRestoring: KubeVirt restores the disks in place from a
	// WukongSnapshot (the VM's status.restoreInProgress, a WukongRestore);
	// the operator leaves the VM alone until it completes.
	PhaseRestoring Phase = "Restoring"
	// PhaseStopped: halted by its run strategy.
	PhaseStopped Phase = "Stopped"
	// PhaseError: Stalled; the Stalled condition says why.
	PhaseError Phase = "Error"
)

// WukongStatus is what the operator observed.
type WukongStatus struct {
	// Phase is a one-word summary; conditions carry the detail.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// VMName is the KubeVirt VirtualMachine's name.
	// +optional
	VMName string `json:"vmName,omitempty"`

	// NodeName is the node the VM runs on.
	// +optional
	NodeName string `json:"nodeName,omitempty"`

	// Resources is the guest's resolved cpu and memory: from the running
	// VirtualMachineInstance, else from the instance type (spec.instancetype)
	// or spec.cpu and spec.memory; and, while it runs, how far they grow
	// live (resources_types.go).
	// +optional
	Resources *ResourcesStatus `json:"resources,omitempty"`

	// Conditions: Ready, NetworksConfigured, VolumesBound, and the kstatus
	// conditions Reconciling and Stalled (present only while true).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Networks reports each NIC as the guest agent and KubeVirt see it.
	// +listType=map
	// +listMapKey=name
	// +optional
	Networks []NetworkStatus `json:"networks,omitempty"`

	// Volumes reports each disk's claim.
	// +listType=map
	// +listMapKey=name
	// +optional
	Volumes []VolumeStatus `json:"volumes,omitempty"`

	// Disks summarises Volumes as "<ready>/<total>", e.g. "1/2": the disks in
	// phase Bound (claim bound and, for an image disk, CDI's import
	// succeeded) over all disks. Empty when the Wukong has no disk.
	// `kubectl get wk` shows it in the Disks column.
	// +optional
	Disks string `json:"disks,omitempty"`

	// ImportProgress is the progress of the least-advanced disk still in
	// phase Importing, as CDI reports it in DataVolume status.progress
	// (e.g. "45.00%"); "N/A" while CDI has not reported a number for it;
	// empty when no disk is importing. `kubectl get wk` shows it in the
	// Import column.
	// +optional
	ImportProgress string `json:"importProgress,omitempty"`

	// Migration is the VM's current or last live migration, from the VMI's
	// status.migrationState (KubeVirt keeps the last one until the next);
	// absent when the running instance was never migrated.
	// +optional
	Migration *MigrationStatus `json:"migration,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// MigrationStatus is a live migration as KubeVirt reports it in the VMI's
// status.migrationState (kubevirt.io/api core/v1
// VirtualMachineInstanceMigrationState).
type MigrationStatus struct {
	// State is Pending (the target pod is ready, the transfer has not
	// started), Running, Succeeded (the guest runs on targetNode) or
	// Failed (it still runs on sourceNode; failureReason says why).
	// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
	State string `json:"state"`
	// SourceNode is the node the guest ran on when the migration started.
	// +optional
	SourceNode string `json:"sourceNode,omitempty"`
	// TargetNode is the node the guest is moved to.
	// +optional
	TargetNode string `json:"targetNode,omitempty"`
	// StartTime is when the transfer started (KubeVirt's startTimestamp).
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// EndTime is when it ended (KubeVirt's endTimestamp).
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
	// FailureReason is KubeVirt's failureReason of a Failed migration
	// ("aborted" for an aborted one that gives none).
	// +optional
	FailureReason string `json:"failureReason,omitempty"`
}

// NetworkStatus is one NIC's observed state.
type NetworkStatus struct {
	// Name of the NIC ("default" for the pod network).
	Name string `json:"name"`
	// Interface is the interface name inside the guest.
	// +optional
	Interface string `json:"interface,omitempty"`
	// IPAddress is the NIC's first IP address.
	// +optional
	IPAddress string `json:"ipAddress,omitempty"`
	// IPAddresses are all the NIC's IP addresses.
	// +listType=atomic
	// +optional
	IPAddresses []string `json:"ipAddresses,omitempty"`
	// MACAddress is the NIC's MAC address.
	// +optional
	MACAddress string `json:"macAddress,omitempty"`
	// NADName is the NetworkAttachmentDefinition used, namespace/name.
	// +optional
	NADName string `json:"nadName,omitempty"`
	// IPSource says where ipAddress comes from: GuestAgent (the QEMU guest
	// agent reported it from inside the guest), Network (KubeVirt reported
	// it without the agent: the pod's address for the pod network), or
	// Configured (nobody observed it: the static address Wukong gave the
	// guest through cloud-init, shown until the guest agent reports
	// addresses). Empty when the NIC has no address to show.
	// +optional
	IPSource IPSource `json:"ipSource,omitempty"`
	// Message says why a secondary NIC shows no address observed inside
	// the guest when KubeVirt gives a reason: the QEMU guest agent is
	// connected but KubeVirt does not support it (VMI condition
	// AgentVersionNotSupported, e.g. after a KubeVirt upgrade), so no
	// addresses are reported from inside the guest; it points at
	// spec.guestAgent and the image. Empty otherwise.
	// +optional
	Message string `json:"message,omitempty"`
}

// IPSource is where a NIC's reported address comes from.
// +kubebuilder:validation:Enum=GuestAgent;Network;Configured
type IPSource string

// IP sources (see NetworkStatus.IPSource). KubeVirt reports the addresses of
// bridge- and SR-IOV-bound NICs only through the guest agent (VMI
// status.interfaces[].infoSource contains guest-agent).
const (
	IPSourceGuestAgent IPSource = "GuestAgent"
	IPSourceNetwork    IPSource = "Network"
	IPSourceConfigured IPSource = "Configured"
)

// VolumeStatus is one disk's observed state.
type VolumeStatus struct {
	// Name of the disk.
	Name string `json:"name"`
	// PVCName is the PersistentVolumeClaim (for image disks also the
	// DataVolume) backing the disk.
	// +optional
	PVCName string `json:"pvcName,omitempty"`
	// Claim says whose claim pvcName is and what deleting the Wukong does
	// to it: Owned (Wukong created it; it is deleted with the Wukong),
	// Retained (Wukong created it; deletionPolicy Retain keeps it when the
	// Wukong is deleted) or Existing (the claim named by claimName; Wukong
	// never changes or deletes it).
	// +optional
	Claim VolumeClaim `json:"claim,omitempty"`
	// Bound is true once the claim is bound to a volume.
	Bound bool `json:"bound"`
	// Size is the claim's actual capacity.
	// +optional
	Size string `json:"size,omitempty"`
	// Phase is Pending, WaitForFirstConsumer, Importing, Bound or Failed.
	// +optional
	Phase string `json:"phase,omitempty"`
	// Progress is CDI's import (or host-assisted clone) progress, e.g. 45.00%.
	// +optional
	Progress string `json:"progress,omitempty"`
	// CloneType is how CDI clones a cloneFrom disk, as it records it on the
	// DataVolume (annotation cdi.kubevirt.io/cloneType): csi-clone (a CSI
	// volume clone), snapshot (through a CSI VolumeSnapshot) or copy (a
	// host-assisted copy by pods). Empty until CDI has chosen, and for
	// disks that are not clones.
	// +optional
	CloneType string `json:"cloneType,omitempty"`
	// Message says why the disk is not bound or failed.
	// +optional
	Message string `json:"message,omitempty"`
	// Hotplug is KubeVirt's phase of a disk attached to (or being
	// detached from) the running machine without a restart: see
	// HotplugStatus.
	// +optional
	Hotplug *HotplugStatus `json:"hotplug,omitempty"`
}

// VolumeClaim is whose a disk's claim is (see VolumeStatus.Claim).
// +kubebuilder:validation:Enum=Owned;Retained;Existing
type VolumeClaim string

// Values of VolumeStatus.Claim.
const (
	VolumeClaimOwned    VolumeClaim = "Owned"
	VolumeClaimRetained VolumeClaim = "Retained"
	VolumeClaimExisting VolumeClaim = "Existing"
)

// Wukong is a virtual machine on Kubernetes: one small resource that becomes
// a KubeVirt VirtualMachine with its disks (PVCs / CDI DataVolumes), NICs
// (Multus NetworkAttachmentDefinitions) and node bridges (NMState).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=wk,categories=all
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="CPU",type=integer,JSONPath=`.status.resources.cpu`
// +kubebuilder:printcolumn:name="Memory",type=string,JSONPath=`.status.resources.memory`
// +kubebuilder:printcolumn:name="Disks",type=string,JSONPath=`.status.disks`,description="Disks ready (bound and imported) / all disks"
// +kubebuilder:printcolumn:name="Import",type=string,JSONPath=`.status.importProgress`,description="Progress of the least-advanced disk CDI is importing"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.nodeName`
// +kubebuilder:printcolumn:name="IP",type=string,JSONPath=`.status.networks[0].ipAddress`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="VM",type=string,JSONPath=`.status.vmName`,priority=1,description="The KubeVirt VirtualMachine"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1,description="Why the Wukong is (not) Ready"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (at most 63 lowercase letters, digits and '-'): it names the VirtualMachine and labels its children"
type Wukong struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec WukongSpec `json:"spec,omitempty"`
	// +optional
	Status WukongStatus `json:"status,omitempty"`
}

// WukongList is a list of Wukongs.
//
// +kubebuilder:object:root=true
type WukongList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Wukong `json:"items"`
}
