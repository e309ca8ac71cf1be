// Package admission guards the capability objects of a provider, in the manner of
// Kubernetes' NodeRestriction: a validating admission webhook that lets each kind of
// caller write only its own part of a capability.
//
//   - The provider's coordinator (the scheduler) assigns a capability to a runtime: it
//     writes spec.runtimeName, the label platform.msp.dev/runtime and the Scheduled
//     condition. It may write anything.
//   - The front door forwards the servicelets' writes: a servicelet adds and removes its
//     finalizer platform.msp.dev/servicelet and writes status, except for the Scheduled
//     condition. It never creates a capability nor changes spec or metadata otherwise.
//   - Tenants (every other user) create capabilities, edit spec and annotations and
//     delete them. They never write the runtime label, never write status and never
//     remove the servicelet's finalizer.
//   - Operators (the groups system:kcp:admin and system:masters) may write anything.
//
// Decide makes the decision for one request; NewHandler serves it over HTTP; and
// WebhookConfiguration registers it with kcp.
package admission

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

// OperatorGroups are the groups whose members may write anything: kcp's and
// Kubernetes' administrators.
var OperatorGroups = []string{"system:kcp:admin", "system:masters"}

// subresourceStatus is the name of the status subresource.
const subresourceStatus = "status"

// Rules name the identities the webhook knows.
type Rules struct {
	// CoordinatorUser is the username of the provider's coordinator (the scheduler).
	// Its writes are always allowed. Empty matches nobody.
	CoordinatorUser string
	// FrontDoorUser is the username of the provider's front door, which forwards the
	// servicelets' writes. Empty matches nobody. Every other user is a tenant.
	FrontDoorUser string
}

// Messages that do not depend on the request.
const (
	msgNoRequest = "the AdmissionReview carries no request"

	msgTenantLabelOnCreate = "the label " + platformv1alpha1.LabelRuntime + " is written by the scheduler when it places the capability; " +
		"remove it from the object. To choose a runtime, set spec.runtimeName instead, if the provider lets you use it"
	msgTenantStatus = "status is written by the platform (the scheduler and the runtime's servicelet), not by tenants; " +
		"leave status out of what you create, apply or update"
	msgTenantFinalizer = "the finalizer " + platformv1alpha1.FinalizerServicelet + " is removed by the runtime's servicelet once the " +
		"capability is deprovisioned; do not remove it: delete the object and wait until it is gone"

	msgFrontDoorCreate = "servicelets do not create capabilities: tenants create them in their workspaces"
	msgFrontDoorWrites = "a servicelet may only add or remove its finalizer " + platformv1alpha1.FinalizerServicelet + " and write status"
)

// Decide is the pure decision for one request: allowed, or refused with a message.
// Only CREATE and UPDATE are checked; every other operation is allowed.
func Decide(r Rules, req *admissionv1.AdmissionRequest) (allowed bool, message string) {
	if req == nil {
		return false, msgNoRequest
	}
	if isOperator(req.UserInfo.Groups) || r.isCoordinator(req.UserInfo.Username) {
		return true, ""
	}
	switch req.Operation {
	case admissionv1.Create:
		if r.isFrontDoor(req.UserInfo.Username) {
			return false, msgFrontDoorCreate
		}
		return tenantCreate(req)
	case admissionv1.Update:
		if r.isFrontDoor(req.UserInfo.Username) {
			return frontDoorUpdate(req)
		}
		return tenantUpdate(req)
	default: // DELETE and CONNECT
		return true, ""
	}
}

// isCoordinator reports whether user is the provider's coordinator.
func (r Rules) isCoordinator(user string) bool {
	return r.CoordinatorUser != "" && user == r.CoordinatorUser
}

// isFrontDoor reports whether user is the provider's front door.
func (r Rules) isFrontDoor(user string) bool {
	return r.FrontDoorUser != "" && user == r.FrontDoorUser
}

// isOperator reports whether one of groups is an operator group.
func isOperator(groups []string) bool {
	for _, g := range groups {
		for _, op := range OperatorGroups {
			if g == op {
				return true
			}
		}
	}
	return false
}

// tenantCreate checks a tenant's CREATE: no runtime label, no status.
func tenantCreate(req *admissionv1.AdmissionRequest) (bool, string) {
	switch req.SubResource {
	case "":
	case subresourceStatus:
		return false, msgTenantStatus
	default:
		return true, ""
	}
	obj, err := decode(req.Object, "object")
	if err != nil {
		return false, err.Error()
	}
	if _, ok := obj.GetLabels()[platformv1alpha1.LabelRuntime]; ok {
		return false, msgTenantLabelOnCreate
	}
	// With a status subresource the API server drops status before admission; this
	// only bites if a provider's CRD lacks one.
	if !isEmpty(obj.Object["status"]) {
		return false, msgTenantStatus
	}
	return true, ""
}

// tenantUpdate checks a tenant's UPDATE: the runtime label and the servicelet's
// finalizer stay, status is not written.
func tenantUpdate(req *admissionv1.AdmissionRequest) (bool, string) {
	switch req.SubResource {
	case "":
	case subresourceStatus:
		return false, msgTenantStatus
	default:
		return true, ""
	}
	oldObj, newObj, err := decodeBoth(req)
	if err != nil {
		return false, err.Error()
	}
	if msg := runtimeLabelChange(oldObj, newObj); msg != "" {
		return false, msg
	}
	if hasFinalizer(oldObj, platformv1alpha1.FinalizerServicelet) && !hasFinalizer(newObj, platformv1alpha1.FinalizerServicelet) {
		return false, msgTenantFinalizer
	}
	// As on create: a status subresource makes this always hold.
	if !equality.Semantic.DeepEqual(oldObj.Object["status"], newObj.Object["status"]) {
		return false, msgTenantStatus
	}
	return true, ""
}

// runtimeLabelChange says how a tenant's update changes the runtime label, or ""
// when it does not.
func runtimeLabelChange(oldObj, newObj *unstructured.Unstructured) string {
	oldValue, hadIt := oldObj.GetLabels()[platformv1alpha1.LabelRuntime]
	newValue, hasIt := newObj.GetLabels()[platformv1alpha1.LabelRuntime]
	switch {
	case hadIt == hasIt && oldValue == newValue:
		return ""
	case !hadIt:
		return msgTenantLabelOnCreate
	case !hasIt:
		return fmt.Sprintf("the label %s must not be removed: the scheduler set it when it placed the capability, and the runtime's servicelet finds the capability by it; keep it at %q",
			platformv1alpha1.LabelRuntime, oldValue)
	default:
		return fmt.Sprintf("the label %s must not change: the scheduler set it when it placed the capability; keep it at %q. To move the capability to another runtime, create a new one and delete this one",
			platformv1alpha1.LabelRuntime, oldValue)
	}
}

// frontDoorUpdate checks a servicelet's UPDATE, forwarded by the front door.
func frontDoorUpdate(req *admissionv1.AdmissionRequest) (bool, string) {
	oldObj, newObj, err := decodeBoth(req)
	if err != nil {
		return false, err.Error()
	}
	var msg string
	switch req.SubResource {
	case "":
		msg = frontDoorMetadataChange(oldObj, newObj)
	case subresourceStatus:
		if msg = scheduledConditionChange(oldObj, newObj); msg == "" {
			msg = schedulerStatusChange(oldObj, newObj)
		}
	default:
		msg = fmt.Sprintf("servicelets must not write the %s subresource: %s", req.SubResource, msgFrontDoorWrites)
	}
	return msg == "", msg
}

// schedulerStatusFields are the status fields only the scheduler writes, besides the
// Scheduled condition: where the capability runs and the scheduler's report.
var schedulerStatusFields = []string{"location", "scheduling"}

// schedulerStatusChange names the first scheduler-owned status field a servicelet
// changed, or returns "".
func schedulerStatusChange(oldObj, newObj *unstructured.Unstructured) string {
	for _, f := range schedulerStatusFields {
		o, had, _ := unstructured.NestedFieldNoCopy(oldObj.Object, "status", f)
		n, _, _ := unstructured.NestedFieldNoCopy(newObj.Object, "status", f)
		if f == "location" && !had && approved(newObj) {
			continue // the servicelet reports where its runtime is, once
		}
		if !equality.Semantic.DeepEqual(o, n) {
			return fmt.Sprintf("servicelets must not change status.%s, which the scheduler writes: %s", f, msgFrontDoorWrites)
		}
	}
	return ""
}

// frontDoorMetadataChange names the first part of the object a servicelet must not
// change but did, or returns "".
func frontDoorMetadataChange(oldObj, newObj *unstructured.Unstructured) string {
	if !equality.Semantic.DeepEqual(oldObj.Object["spec"], newObj.Object["spec"]) {
		return "servicelets must not change spec: the tenant owns it; " + msgFrontDoorWrites
	}
	if key := firstChangedKey(oldObj.GetLabels(), newObj.GetLabels()); key != "" {
		return fmt.Sprintf("servicelets must not change metadata.labels (label %q changed): %s", key, msgFrontDoorWrites)
	}
	if key := firstChangedKey(oldObj.GetAnnotations(), newObj.GetAnnotations()); key != "" {
		return fmt.Sprintf("servicelets must not change metadata.annotations (annotation %q changed): %s", key, msgFrontDoorWrites)
	}
	oldRefs, _, _ := unstructured.NestedFieldNoCopy(oldObj.Object, "metadata", "ownerReferences")
	newRefs, _, _ := unstructured.NestedFieldNoCopy(newObj.Object, "metadata", "ownerReferences")
	if !equality.Semantic.DeepEqual(oldRefs, newRefs) {
		return "servicelets must not change metadata.ownerReferences: " + msgFrontDoorWrites
	}
	if name := firstChangedFinalizer(oldObj.GetFinalizers(), newObj.GetFinalizers()); name != "" {
		return fmt.Sprintf("servicelets must not add or remove the finalizer %q in metadata.finalizers: %s", name, msgFrontDoorWrites)
	}
	return ""
}

// firstChangedKey returns the first key, in sorted order, whose presence or value
// differs between a and b, or "" when they are equal.
func firstChangedKey(a, b map[string]string) string {
	var changed []string
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			changed = append(changed, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return ""
	}
	sort.Strings(changed)
	return changed[0]
}

// firstChangedFinalizer returns the first finalizer, in sorted order, other than the
// servicelet's, that occurs a different number of times in a and b, or "" when none
// does. Order does not matter.
func firstChangedFinalizer(a, b []string) string {
	count := map[string]int{}
	for _, f := range a {
		count[f]++
	}
	for _, f := range b {
		count[f]--
	}
	var changed []string
	for f, n := range count {
		if n != 0 && f != platformv1alpha1.FinalizerServicelet {
			changed = append(changed, f)
		}
	}
	if len(changed) == 0 {
		return ""
	}
	sort.Strings(changed)
	return changed[0]
}

// scheduledConditionChange says how a servicelet's status write changes the
// Scheduled condition, or returns "" when it does not.
func scheduledConditionChange(oldObj, newObj *unstructured.Unstructured) string {
	oldCond := findCondition(oldObj, platformv1alpha1.ConditionScheduled)
	newCond := findCondition(newObj, platformv1alpha1.ConditionScheduled)
	var what string
	switch {
	case oldCond == nil && newCond == nil:
		return ""
	case (oldCond == nil || oldCond["status"] != "True") && newCond != nil && approved(newObj) &&
		newCond["status"] == "True" && newCond["reason"] == platformv1alpha1.ReasonAssigned:
		// The scheduler approved the assignment (runtimeName, its label and the
		// servicelet's finalizer, in one write); the servicelet reports it.
		return ""
	case oldCond == nil:
		what = "add"
	case newCond == nil:
		what = "remove"
	case sameCondition(oldCond, newCond):
		return ""
	default:
		what = "change"
	}
	return fmt.Sprintf("servicelets must not %s the %s condition: the scheduler writes it; leave it out of the status you apply, or restate it unchanged",
		what, platformv1alpha1.ConditionScheduled)
}

// approved tells whether the scheduler approved the capability's assignment: its
// runtimeName, the runtime label naming the same runtime and the servicelet's
// finalizer, which the scheduler writes together and a servicelet cannot.
func approved(obj *unstructured.Unstructured) bool {
	rt, _, _ := unstructured.NestedString(obj.Object, "spec", "runtimeName")
	return rt != "" && obj.GetLabels()[platformv1alpha1.LabelRuntime] == rt &&
		slices.Contains(obj.GetFinalizers(), platformv1alpha1.FinalizerServicelet)
}

// findCondition returns the first element of status.conditions with the given type,
// or nil.
func findCondition(obj *unstructured.Unstructured, conditionType string) map[string]any {
	conds, _, _ := unstructured.NestedFieldNoCopy(obj.Object, "status", "conditions")
	list, _ := conds.([]any)
	for _, c := range list {
		if m, ok := c.(map[string]any); ok && m["type"] == conditionType {
			return m
		}
	}
	return nil
}

// sameCondition compares the fields of two conditions that carry meaning. An absent
// field equals its zero value, so a condition that went through a typed client and
// back compares equal to the one stored.
func sameCondition(a, b map[string]any) bool {
	for _, f := range []string{"status", "reason", "message"} {
		if !sameString(a[f], b[f]) {
			return false
		}
	}
	return sameInt(a["observedGeneration"], b["observedGeneration"]) &&
		sameTime(a["lastTransitionTime"], b["lastTransitionTime"])
}

// sameString compares two JSON strings, nil counting as "".
func sameString(a, b any) bool {
	x, okA := stringOf(a)
	y, okB := stringOf(b)
	if !okA || !okB {
		return equality.Semantic.DeepEqual(a, b)
	}
	return x == y
}

// stringOf returns a JSON string as a string, nil as "".
func stringOf(v any) (string, bool) {
	switch s := v.(type) {
	case nil:
		return "", true
	case string:
		return s, true
	default:
		return "", false
	}
}

// sameInt compares two JSON integers, nil counting as 0.
func sameInt(a, b any) bool {
	x, okA := int64Of(a)
	y, okB := int64Of(b)
	if !okA || !okB {
		return equality.Semantic.DeepEqual(a, b)
	}
	return x == y
}

// int64Of returns a JSON integer as an int64, nil as 0.
func int64Of(v any) (int64, bool) {
	switch n := v.(type) {
	case nil:
		return 0, true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case int64:
		return n, true
	default:
		return 0, false
	}
}

// sameTime compares two RFC 3339 timestamps as instants, and anything else as
// sameString does.
func sameTime(a, b any) bool {
	x, okA := stringOf(a)
	y, okB := stringOf(b)
	if okA && okB {
		tx, errX := time.Parse(time.RFC3339, x)
		ty, errY := time.Parse(time.RFC3339, y)
		if errX == nil && errY == nil {
			return tx.Equal(ty)
		}
	}
	return sameString(a, b)
}

// hasFinalizer reports whether obj carries the finalizer name.
func hasFinalizer(obj *unstructured.Unstructured, name string) bool {
	for _, f := range obj.GetFinalizers() {
		if f == name {
			return true
		}
	}
	return false
}

// isEmpty reports whether v is absent, null or an empty object.
func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	m, ok := v.(map[string]any)
	return ok && len(m) == 0
}

// decodeBoth decodes the old and the new object of an UPDATE.
func decodeBoth(req *admissionv1.AdmissionRequest) (oldObj, newObj *unstructured.Unstructured, err error) {
	if oldObj, err = decode(req.OldObject, "old object"); err != nil {
		return nil, nil, err
	}
	if newObj, err = decode(req.Object, "object"); err != nil {
		return nil, nil, err
	}
	return oldObj, newObj, nil
}

// decode decodes a JSON object of a request; numbers stay json.Number so that they
// compare exactly. which names it in the error.
func decode(raw runtime.RawExtension, which string) (*unstructured.Unstructured, error) {
	if len(raw.Raw) == 0 {
		return nil, fmt.Errorf("the admission request carries no %s; the webhook needs it to decide", which)
	}
	dec := json.NewDecoder(bytes.NewReader(raw.Raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("cannot decode the %s of the admission request as a JSON object: %v", which, err)
	}
	if m == nil {
		return nil, fmt.Errorf("the %s of the admission request is null; the webhook needs it to decide", which)
	}
	return &unstructured.Unstructured{Object: m}, nil
}
