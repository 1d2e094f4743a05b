package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ClusterImageSpec is an administrator's golden image: where it comes from,
// which namespaces may clone it, and which StorageClasses hold a golden
// copy.
//
// +kubebuilder:validation:XValidation:rule="!has(self.schedule) || !(self.source.startsWith('http://') || self.source.startsWith('https://'))",message="schedule applies to registry sources only: CDI's DataImportCron polls registries (docker://… or a bare reference), not http(s) URLs",fieldPath=".schedule"
// +kubebuilder:validation:XValidation:rule="!has(self.importsToKeep) || has(self.schedule)",message="importsToKeep needs schedule: only periodic re-imports keep older copies",fieldPath=".importsToKeep"
// +kubebuilder:validation:XValidation:rule="self.source == oldSelf.source",message="source is immutable: declare a new ClusterImage for another image",fieldPath=".source"
// +kubebuilder:validation:XValidation:rule="has(self.schedule) == has(oldSelf.schedule)",message="schedule cannot be added or removed (a scheduled image is kept by a DataImportCron, another by a DataVolume): declare a new ClusterImage",fieldPath=".schedule"
type ClusterImageSpec struct {
	// Source is the image, in the forms a disk's image accepts: an
	// http(s):// URL (imported once by a CDI DataVolume) or a registry
	// image (docker://… or a bare reference; with schedule re-imported by a
	// CDI DataImportCron when the registry's digest changes). The
	// operator's --image-sources (a tenant's guard) do not apply: the
	// administrator declares it. Immutable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:Pattern=`^\S+$`
	Source string `json:"source"`

	// Size of each golden copy, a quantity such as 10Gi: at least the
	// image's virtual size (CDI: "A larger PVC is required" otherwise).
	// A disk cloned from the image must be at least this big (CDI refuses
	// a smaller clone target: ValidateRequestedCloneSize).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="size must be a quantity greater than zero, e.g. 10Gi"
	Size resource.Quantity `json:"size"`

	// NamespaceSelector selects the namespaces whose Wukongs may clone the
	// image (spec.disks[i].clusterImage), with NodeBridge's semantics:
	// omitted, no namespace may; {} selects every namespace. A Wukong in
	// another namespace is refused with the same message as for an image
	// that is not declared at all.
	// +kubebuilder:validation:XValidation:rule="!has(self.matchLabels) || (size(self.matchLabels) <= 64 && self.matchLabels.all(k, size(k) <= 317 && size(self.matchLabels[k]) <= 63))",message="namespaceSelector.matchLabels has at most 64 entries, keys of at most 317 characters and values of at most 63",fieldPath=".matchLabels"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || (size(self.matchExpressions) <= 32 && self.matchExpressions.all(e, size(e.key) <= 317 && (!has(e.values) || size(e.values) <= 64)))",message="namespaceSelector.matchExpressions has at most 32 entries, keys of at most 317 characters and at most 64 values each",fieldPath=".matchExpressions"
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// StorageClassNames are the StorageClasses that get a golden copy, one
	// each. Empty: the cluster's default StorageClass only. A disk of
	// another class still clones the image (from the first class's copy;
	// CDI then copies across classes, host-assisted).
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=set
	// +optional
	StorageClassNames []string `json:"storageClassNames,omitempty"`

	// Schedule re-imports a registry source periodically, in cron format
	// (e.g. "0 */12 * * *"): CDI's DataImportCron polls the registry on it
	// and imports a new golden copy when the image's digest changed, then
	// points the image's DataSource at it. Omitted: imported once. It can
	// change, but not be added or removed. Not for
	// http(s) sources (CDI's DataImportCron polls registries only:
	// pkg/controller/dataimportcron-controller.go initCron).
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Schedule string `json:"schedule,omitempty"`

	// ImportsToKeep is how many golden copies per StorageClass a schedule
	// keeps (DataImportCron spec.importsToKeep; CDI's default 3); older
	// ones are garbage-collected by CDI. Needs schedule.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	// +optional
	ImportsToKeep *int32 `json:"importsToKeep,omitempty"`
}

// ClusterImageCopy is the golden copy of an image in one StorageClass.
type ClusterImageCopy struct {
	// StorageClassName is the class of the copy.
	StorageClassName string `json:"storageClassName"`
	// DataSourceName is the CDI DataSource (in the catalog namespace) disks
	// clone from (DataVolume spec.sourceRef).
	DataSourceName string `json:"dataSourceName"`
	// Ready is true once the DataSource is Ready: its source claim holds a
	// complete import.
	Ready bool `json:"ready"`
	// Phase is the golden import's DataVolume phase (e.g. ImportInProgress,
	// Succeeded), empty when CDI reports none.
	// +optional
	Phase string `json:"phase,omitempty"`
	// Progress is CDI's import progress, e.g. 45.00%.
	// +optional
	Progress string `json:"progress,omitempty"`
	// Size is the golden claim's capacity.
	// +optional
	Size string `json:"size,omitempty"`
	// LastImportTime is when the copy was last imported: the
	// DataImportCron's status.lastImportTimestamp, else when the import's
	// DataVolume became Ready.
	// +optional
	LastImportTime *metav1.Time `json:"lastImportTime,omitempty"`
	// Message says why the copy is not ready.
	// +optional
	Message string `json:"message,omitempty"`
}

// ClusterImageStatus is what the operator observed of the golden copies.
type ClusterImageStatus struct {
	// Copies are the golden copies, one per StorageClass.
	// +listType=map
	// +listMapKey=storageClassName
	// +optional
	Copies []ClusterImageCopy `json:"copies,omitempty"`

	// Conditions: Ready (every copy is ready), and the kstatus conditions
	// Reconciling and Stalled (present only while true).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ClusterImage is a golden image an administrator publishes for tenants:
// its source is imported once per StorageClass into a golden volume in the
// operator's catalog namespace (--image-catalog-namespace) by CDI (a
// DataVolume and a DataSource, or a DataImportCron with schedule), and a
// Wukong disk naming it (spec.disks[i].clusterImage) is a CDI clone of the
// golden volume (CSI clone, snapshot or host-assisted copy: CDI decides;
// status.volumes[i].cloneType says which). It is cluster-scoped and meant
// for cluster administrators. A Wukong may use it only from a namespace its
// namespaceSelector selects; a refusal reads the same whether the image
// exists or not. Deleting it deletes its golden copies (they are its
// children); disks already cloned from it keep their data.
//
// The name is at most 40 characters, a DNS label starting with a letter
// (it names the DataSources, which CDI's DataImportCron wants as DNS-1035
// labels).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=wki
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.spec.source`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.spec.size`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be at most 40 lowercase letters, digits and '-', starting with a letter: it names the image's CDI DataSources"
type ClusterImage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ClusterImageSpec `json:"spec"`
	// +optional
	Status ClusterImageStatus `json:"status,omitempty"`
}

// ClusterImageList is a list of ClusterImages.
//
// +kubebuilder:object:root=true
type ClusterImageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterImage `json:"items"`
}

// Condition reasons of a ClusterImage, and of a Wukong disk naming one.
const (
	// ReasonImageNotAllowed: spec.disks[i].clusterImage names a
	// ClusterImage that does not exist or does not select the Wukong's
	// namespace (the message is the same either way).
	ReasonImageNotAllowed = "ClusterImageNotAllowed"
	// ReasonGoldenCopyPending: a ClusterImage's golden copies are being
	// imported.
	ReasonGoldenCopyPending = "GoldenCopyPending"
	// ReasonGoldenCopyReady: every golden copy is ready to clone.
	ReasonGoldenCopyReady = "GoldenCopiesReady"
	// ReasonInvalidImage: the ClusterImage's source is not an http(s) URL
	// or a registry image, or the operator's image sources refuse it.
	ReasonInvalidImage = "InvalidSource"
)

// GetConditions returns the ClusterImage's status conditions
// (lib/conditions Getter).
func (c *ClusterImage) GetConditions() []metav1.Condition { return c.Status.Conditions }

// SetConditions replaces the ClusterImage's status conditions
// (lib/conditions Setter).
func (c *ClusterImage) SetConditions(conds []metav1.Condition) { c.Status.Conditions = conds }

// GetObservedGeneration is the generation the ClusterImage's status
// describes.
func (c *ClusterImage) GetObservedGeneration() int64 { return c.Status.ObservedGeneration }

func init() {
	// Registered here rather than in addKnownTypes, so the kind stays in
	// its own file.
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &ClusterImage{}, &ClusterImageList{})
		return nil
	})
}
