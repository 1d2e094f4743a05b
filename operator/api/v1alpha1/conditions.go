package v1alpha1

// Condition types of a Wukong. Ready, Reconciling and Stalled follow kstatus,
// so kubectl wait, Helm --wait, Argo CD and Flux read a Wukong's health
// without custom code: Reconciling and Stalled are present only while true.
const (
	// ReadyCondition: the VM runs and every network and volume is in place
	// (or, for a halted VM, everything is in place to start it).
	ReadyCondition = "Ready"
	// NetworksConfiguredCondition: every NIC's NetworkAttachmentDefinition
	// exists and every node bridge policy is Available.
	NetworksConfiguredCondition = "NetworksConfigured"
	// VolumesBoundCondition: every disk's claim is bound (True), or waiting
	// for the VM as first consumer (False, reason WaitForFirstConsumer).
	VolumesBoundCondition = "VolumesBound"
	// ReconcilingCondition: the operator is making progress toward the spec.
	ReconcilingCondition = "Reconciling"
	// StalledCondition: progress needs a change from the user or the cluster
	// admin; the reason and message say which field or object.
	StalledCondition = "Stalled"
	// RestartRequiredCondition: a spec change (cpu, memory, NICs) takes effect
	// only after the guest restarts; Wukong does not restart it behind the
	// user's back.
	RestartRequiredCondition = "RestartRequired"
)

// Condition reasons.
const (
	ReasonSucceeded              = "Succeeded"
	ReasonProgressing            = "Progressing"
	ReasonRunning                = "Running"
	ReasonStopped                = "Stopped"
	ReasonStarting               = "Starting"
	ReasonNADCreated             = "NetworkAttachmentDefinitionsReady"
	ReasonNADNotFound            = "NetworkAttachmentDefinitionNotFound"
	ReasonBridgePending          = "NodeBridgePending"
	ReasonBridgeDegraded         = "NodeBridgeDegraded"
	ReasonNMStateMissing         = "NMStateNotInstalled"
	ReasonForeignPolicy          = "ForeignNodeNetworkPolicy"
	ReasonBridgeConflict         = "NodeBridgeConflict"
	ReasonInvalidNetwork         = "InvalidNetwork"
	ReasonVolumesBound           = "Bound"
	ReasonVolumesPending         = "Pending"
	ReasonWaitForFirstConsumer   = "WaitForFirstConsumer"
	ReasonImporting              = "Importing"
	ReasonImportFailed           = "ImportFailed"
	ReasonStorageClassNotFound   = "StorageClassNotFound"
	ReasonShrinkRefused          = "ShrinkRefused"
	ReasonExpansionNotAllowed    = "ExpansionNotAllowed"
	ReasonCDIMissing             = "CDINotInstalled"
	ReasonKubeVirtMissing        = "KubeVirtNotInstalled"
	ReasonSecretNotFound         = "SecretNotFound"
	ReasonInvalidSpec            = "InvalidSpec"
	ReasonUnschedulable          = "Unschedulable"
	ReasonVMFailed               = "VirtualMachineFailed"
	ReasonWaitingForDependencies = "WaitingForDependencies"
	ReasonRestartRequired        = "RestartRequired"
	ReasonDeletionBlocked        = "DeletionBlocked"
	ReasonTransientError         = "TransientError"
)
