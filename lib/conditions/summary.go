package conditions

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	// SucceededReason is the reason SetSummary gives the target condition
	// when every listed condition is True.
	SucceededReason = "Succeeded"
	// SucceededMessage is the message SetSummary gives the target condition
	// when every listed condition is True.
	SucceededMessage = "All conditions are true"
	// ConditionMissingReason is the reason SetSummary uses when the first
	// not-True condition does not exist yet (it counts as Unknown); the
	// message is "<Type> has not been reported".
	ConditionMissingReason = "ConditionMissing"
	// UnspecifiedReason replaces an empty reason on the source condition, so
	// the summary is always a valid metav1.Condition (reason is required).
	UnspecifiedReason = "Unspecified"
)

// SetSummary sets targetType (typically [ReadyCondition]) from the
// conditions listed in from:
//
//   - True, reason [SucceededReason], message [SucceededMessage], when
//     every listed condition is True (also when from is empty);
//   - otherwise the status (False or Unknown), reason and message of the
//     first listed condition, in the order given, that is not True. A
//     missing condition counts as Unknown with reason [ConditionMissingReason]
//     and message "<Type> has not been reported". An empty reason becomes
//     [UnspecifiedReason]; an empty message becomes "<Type> is <Status>".
//
// targetType itself is skipped if it appears in from.
func SetSummary(to Setter, targetType string, from ...string) {
	if to == nil {
		return
	}
	c := metav1.Condition{
		Type:    targetType,
		Status:  metav1.ConditionTrue,
		Reason:  SucceededReason,
		Message: SucceededMessage,
	}
	conds := to.GetConditions()
	for _, t := range from {
		if t == targetType {
			continue
		}
		src := find(conds, t)
		if src == nil {
			c.Status = metav1.ConditionUnknown
			c.Reason = ConditionMissingReason
			c.Message = t + " has not been reported"
			break
		}
		if src.Status == metav1.ConditionTrue {
			continue
		}
		c.Status = src.Status
		if c.Status != metav1.ConditionFalse {
			c.Status = metav1.ConditionUnknown
		}
		c.Reason = src.Reason
		if c.Reason == "" {
			c.Reason = UnspecifiedReason
		}
		c.Message = src.Message
		if c.Message == "" {
			c.Message = t + " is " + string(src.Status)
		}
		break
	}
	Set(to, c)
}

func find(cs []metav1.Condition, t string) *metav1.Condition {
	for i := range cs {
		if cs[i].Type == t {
			return &cs[i]
		}
	}
	return nil
}
