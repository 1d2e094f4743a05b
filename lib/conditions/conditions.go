package conditions

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Getter is an object that exposes its conditions. metav1.Object provides
// the generation stamped into ObservedGeneration.
type Getter interface {
	metav1.Object
	GetConditions() []metav1.Condition
}

// Setter is a Getter whose conditions can be replaced.
type Setter interface {
	Getter
	SetConditions(conditions []metav1.Condition)
}

// Now returns the time used for LastTransitionTime when a condition is new or
// its Status flips. It is truncated to seconds (the precision metav1.Time
// keeps on the wire). Tests may replace it; it is not safe to replace while
// other goroutines call Set.
var Now = func() metav1.Time { return metav1.Now().Rfc3339Copy() }

// Set writes c into to's conditions, replacing any condition of the same type.
//
// It stamps c.ObservedGeneration with to.GetGeneration(); keeps the existing
// LastTransitionTime while Status does not change; otherwise uses
// c.LastTransitionTime if non-zero, else [Now]. The resulting list holds one
// condition per type, sorted Ready first, then alphabetically by type. A
// condition with an empty Type is ignored. The slice returned by
// to.GetConditions() is not modified; a new slice is passed to SetConditions.
func Set(to Setter, c metav1.Condition) {
	if to == nil || c.Type == "" {
		return
	}
	c.ObservedGeneration = to.GetGeneration()

	old := to.GetConditions()
	out := make([]metav1.Condition, 0, len(old)+1)
	found := false
	for _, e := range old {
		if e.Type != c.Type {
			out = append(out, e)
			continue
		}
		if !found && e.Status == c.Status {
			c.LastTransitionTime = e.LastTransitionTime
		}
		found = true
	}
	if c.LastTransitionTime.IsZero() {
		c.LastTransitionTime = Now()
	}
	out = append(out, c)
	sortConditions(out)
	to.SetConditions(out)
}

// sortConditions orders Ready first, then by type.
func sortConditions(cs []metav1.Condition) {
	slices.SortStableFunc(cs, func(a, b metav1.Condition) int {
		ar, br := a.Type == ReadyCondition, b.Type == ReadyCondition
		switch {
		case ar && !br:
			return -1
		case br && !ar:
			return 1
		}
		return strings.Compare(a.Type, b.Type)
	})
}

// message formats messageFormat with args; without args the format is used
// verbatim, so a literal '%' in a message is kept.
func message(messageFormat string, args []any) string {
	if len(args) == 0 {
		return messageFormat
	}
	return fmt.Sprintf(messageFormat, args...)
}

func mark(to Setter, t string, s metav1.ConditionStatus, reason, messageFormat string, args []any) {
	Set(to, metav1.Condition{
		Type:    t,
		Status:  s,
		Reason:  reason,
		Message: message(messageFormat, args),
	})
}

// MarkTrue sets condition t to True with the given reason and message
// (formatted with fmt.Sprintf when args are given).
func MarkTrue(to Setter, t, reason, messageFormat string, args ...any) {
	mark(to, t, metav1.ConditionTrue, reason, messageFormat, args)
}

// MarkFalse sets condition t to False with the given reason and message.
func MarkFalse(to Setter, t, reason, messageFormat string, args ...any) {
	mark(to, t, metav1.ConditionFalse, reason, messageFormat, args)
}

// MarkUnknown sets condition t to Unknown with the given reason and message.
func MarkUnknown(to Setter, t, reason, messageFormat string, args ...any) {
	mark(to, t, metav1.ConditionUnknown, reason, messageFormat, args)
}

// Get returns a copy of the condition of type t, or nil when it is missing.
func Get(from Getter, t string) *metav1.Condition {
	if from == nil {
		return nil
	}
	for _, c := range from.GetConditions() {
		if c.Type == t {
			return &c
		}
	}
	return nil
}

// Has reports whether a condition of type t exists.
func Has(from Getter, t string) bool { return Get(from, t) != nil }

// IsTrue reports whether condition t exists with status True.
func IsTrue(from Getter, t string) bool { return status(from, t) == metav1.ConditionTrue }

// IsFalse reports whether condition t exists with status False.
func IsFalse(from Getter, t string) bool { return status(from, t) == metav1.ConditionFalse }

// IsUnknown reports whether condition t has status Unknown or is missing
// (as in Flux and cluster-api).
func IsUnknown(from Getter, t string) bool { return status(from, t) == metav1.ConditionUnknown }

// status returns the status of t, Unknown when missing.
func status(from Getter, t string) metav1.ConditionStatus {
	if c := Get(from, t); c != nil {
		return c.Status
	}
	return metav1.ConditionUnknown
}

// GetReason returns the reason of condition t, or "" when it is missing.
func GetReason(from Getter, t string) string {
	if c := Get(from, t); c != nil {
		return c.Reason
	}
	return ""
}

// GetMessage returns the message of condition t, or "" when it is missing.
func GetMessage(from Getter, t string) string {
	if c := Get(from, t); c != nil {
		return c.Message
	}
	return ""
}

// Delete removes every condition of type t. It does not call SetConditions
// when there is none.
func Delete(to Setter, t string) {
	if to == nil {
		return
	}
	old := to.GetConditions()
	if !slices.ContainsFunc(old, func(c metav1.Condition) bool { return c.Type == t }) {
		return
	}
	out := make([]metav1.Condition, 0, len(old))
	for _, c := range old {
		if c.Type != t {
			out = append(out, c)
		}
	}
	to.SetConditions(out)
}
