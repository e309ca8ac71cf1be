package admission

import (
	"encoding/json"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
)

const (
	coordinator = "msp:coordinator:root:provider"
	frontDoor   = "msp:frontdoor:root:provider"
	tenant      = "alice"
)

var testRules = Rules{CoordinatorUser: coordinator, FrontDoorUser: frontDoor}

// object is a capability as JSON-shaped maps; the mutators below change a copy.
type object map[string]any

// unplaced is a capability the scheduler has not placed yet.
func unplaced() object {
	return object{
		"apiVersion": "postgres.msp.dev/v1alpha1",
		"kind":       "PostgresDatabase",
		"metadata":   map[string]any{"name": "orders", "namespace": "default", "generation": 1},
		"spec":       map[string]any{"resources": map[string]any{"storage": "10Gi"}, "deletionPolicy": "Delete"},
	}
}

// placed is a capability the scheduler placed on rt-1 and whose servicelet took it.
func placed() object {
	return unplaced().
		with("spec", "runtimeName", "rt-1").
		withLabel(platformv1alpha1.LabelRuntime, "rt-1").
		withFinalizers(platformv1alpha1.FinalizerServicelet).
		withCondition(scheduledTrue()).
		withCondition(map[string]any{"type": "Ready", "status": "False", "reason": "Creating", "message": "", "lastTransitionTime": "2025-01-01T10:00:00Z", "observedGeneration": 1})
}

func scheduledTrue() map[string]any {
	return map[string]any{"type": "Scheduled", "status": "True", "reason": "Assigned", "message": "placed on rt-1", "lastTransitionTime": "2025-01-01T09:00:00Z", "observedGeneration": 1}
}

// copy returns a deep copy of o.
func (o object) copy() object {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	out := object{}
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// with sets the field at path to v.
func (o object) with(path ...any) object {
	out := o.copy()
	m := map[string]any(out)
	keys, v := path[:len(path)-1], path[len(path)-1]
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k.(string)].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k.(string)] = next
		}
		m = next
	}
	if v == nil {
		delete(m, keys[len(keys)-1].(string))
	} else {
		m[keys[len(keys)-1].(string)] = v
	}
	return out
}

func (o object) withLabel(k, v string) object      { return o.with("metadata", "labels", k, v) }
func (o object) withoutLabel(k string) object      { return o.with("metadata", "labels", k, nil) }
func (o object) withAnnotation(k, v string) object { return o.with("metadata", "annotations", k, v) }

func (o object) withFinalizers(f ...string) object {
	list := make([]any, len(f))
	for i, s := range f {
		list[i] = s
	}
	return o.with("metadata", "finalizers", list)
}

// withCondition replaces the condition of the same type, or appends it.
func (o object) withCondition(c map[string]any) object {
	out := o.copy()
	st, _ := out["status"].(map[string]any)
	if st == nil {
		st = map[string]any{}
		out["status"] = st
	}
	list, _ := st["conditions"].([]any)
	for i, have := range list {
		if have.(map[string]any)["type"] == c["type"] {
			list[i] = c
			st["conditions"] = list
			return out
		}
	}
	st["conditions"] = append(list, c)
	return out
}

// withoutCondition removes the condition of type t.
func (o object) withoutCondition(t string) object {
	out := o.copy()
	st, _ := out["status"].(map[string]any)
	list, _ := st["conditions"].([]any)
	var keep []any
	for _, c := range list {
		if c.(map[string]any)["type"] != t {
			keep = append(keep, c)
		}
	}
	st["conditions"] = keep
	return out
}

func (o object) raw() runtime.RawExtension {
	if o == nil {
		return runtime.RawExtension{}
	}
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	return runtime.RawExtension{Raw: b}
}

// request builds an AdmissionRequest.
func request(user string, groups []string, op admissionv1.Operation, sub string, oldObj, newObj object) *admissionv1.AdmissionRequest {
	return &admissionv1.AdmissionRequest{
		UID:         "4f0e6a8c-0000-4000-8000-000000000001",
		Operation:   op,
		SubResource: sub,
		Name:        "orders",
		Namespace:   "default",
		UserInfo:    authenticationv1.UserInfo{Username: user, Groups: groups},
		OldObject:   oldObj.raw(),
		Object:      newObj.raw(),
	}
}

func TestDecide(t *testing.T) {
	const (
		create = admissionv1.Create
		update = admissionv1.Update
		status = "status"
	)
	authenticated := []string{"system:authenticated"}
	scheduledChanged := scheduledTrue()
	scheduledChanged["message"] = "placed on rt-2"
	// The Scheduled condition as stored (message empty, observedGeneration 0), and as
	// a typed client restates it: both omitted, the same instant in another zone.
	stored := placed().withCondition(map[string]any{"type": "Scheduled", "status": "True", "reason": "Assigned", "message": "", "lastTransitionTime": "2025-01-01T09:00:00Z", "observedGeneration": 0})
	restated := stored.withCondition(map[string]any{"type": "Scheduled", "status": "True", "reason": "Assigned", "lastTransitionTime": "2025-01-01T10:00:00+01:00"})

	tests := []struct {
		name    string
		req     *admissionv1.AdmissionRequest
		allowed bool
		// message must contain every one of these.
		message []string
	}{
		// Tenants.
		{name: "tenant creates", req: request(tenant, authenticated, create, "", nil, unplaced()), allowed: true},
		{name: "tenant creates with spec.runtimeName", req: request(tenant, authenticated, create, "", nil, unplaced().with("spec", "runtimeName", "rt-1")), allowed: true},
		{name: "tenant creates with empty status", req: request(tenant, authenticated, create, "", nil, unplaced().with("status", map[string]any{})), allowed: true},
		{
			name:    "tenant sets the runtime label on create",
			req:     request(tenant, authenticated, create, "", nil, unplaced().withLabel(platformv1alpha1.LabelRuntime, "rt-1")),
			message: []string{platformv1alpha1.LabelRuntime, "written by the scheduler", "remove it", "spec.runtimeName"},
		},
		{
			name:    "tenant creates with a status (CRD without status subresource)",
			req:     request(tenant, authenticated, create, "", nil, unplaced().withCondition(scheduledTrue())),
			message: []string{"status is written by the platform"},
		},
		{
			name:    "tenant creates the status subresource",
			req:     request(tenant, authenticated, create, status, nil, unplaced().withCondition(scheduledTrue())),
			message: []string{"status is written by the platform"},
		},
		{
			name:    "tenant moves the runtime label",
			req:     request(tenant, authenticated, update, "", placed(), placed().withLabel(platformv1alpha1.LabelRuntime, "rt-2")),
			message: []string{platformv1alpha1.LabelRuntime, "must not change", `"rt-1"`},
		},
		{
			name:    "tenant removes the runtime label",
			req:     request(tenant, authenticated, update, "", placed(), placed().withoutLabel(platformv1alpha1.LabelRuntime)),
			message: []string{platformv1alpha1.LabelRuntime, "must not be removed", `"rt-1"`},
		},
		{
			name:    "tenant sets the runtime label on update",
			req:     request(tenant, authenticated, update, "", unplaced(), unplaced().withLabel(platformv1alpha1.LabelRuntime, "rt-1")),
			message: []string{platformv1alpha1.LabelRuntime, "written by the scheduler"},
		},
		{
			name:    "tenant removes the servicelet's finalizer",
			req:     request(tenant, authenticated, update, "", placed(), placed().withFinalizers()),
			message: []string{platformv1alpha1.FinalizerServicelet, "delete the object and wait"},
		},
		{
			name:    "tenant adds another finalizer",
			req:     request(tenant, authenticated, update, "", placed(), placed().withFinalizers(platformv1alpha1.FinalizerServicelet, "example.com/backup")),
			allowed: true,
		},
		{
			name:    "tenant removes another finalizer",
			req:     request(tenant, authenticated, update, "", placed().withFinalizers("example.com/backup", platformv1alpha1.FinalizerServicelet), placed()),
			allowed: true,
		},
		{
			name:    "tenant annotates",
			req:     request(tenant, authenticated, update, "", placed(), placed().withAnnotation(platformv1alpha1.AnnotationRotateCredentials, "2025-01-02T00:00:00Z")),
			allowed: true,
		},
		{
			name:    "tenant adds another label",
			req:     request(tenant, authenticated, update, "", placed(), placed().withLabel("team", "shop")),
			allowed: true,
		},
		{
			name:    "tenant changes the spec's size",
			req:     request(tenant, authenticated, update, "", placed(), placed().with("spec", "resources", map[string]any{"storage": "20Gi"})),
			allowed: true,
		},
		{
			name:    "tenant writes status with a forged Scheduled=True",
			req:     request(tenant, authenticated, update, status, unplaced(), unplaced().withCondition(scheduledTrue())),
			message: []string{"status is written by the platform"},
		},
		{
			name:    "tenant writes status with a forged Ready=True",
			req:     request(tenant, authenticated, update, status, placed(), placed().withCondition(map[string]any{"type": "Ready", "status": "True", "reason": "Available"})),
			message: []string{"status is written by the platform"},
		},
		{
			name:    "tenant changes status through the main resource (CRD without status subresource)",
			req:     request(tenant, authenticated, update, "", unplaced(), unplaced().withCondition(scheduledTrue())),
			message: []string{"status is written by the platform"},
		},
		{name: "tenant deletes", req: request(tenant, authenticated, admissionv1.Delete, "", placed(), nil), allowed: true},
		{name: "connect is allowed", req: request(tenant, authenticated, admissionv1.Connect, "", nil, nil), allowed: true},

		// The front door, for the servicelets.
		{
			name:    "front door adds the servicelet's finalizer",
			req:     request(frontDoor, authenticated, update, "", placed().withFinalizers(), placed()),
			allowed: true,
		},
		{
			name:    "front door removes the servicelet's finalizer",
			req:     request(frontDoor, authenticated, update, "", placed(), placed().withFinalizers()),
			allowed: true,
		},
		{
			name:    "front door adds its finalizer before another, in another order",
			req:     request(frontDoor, authenticated, update, "", placed().withFinalizers("example.com/backup"), placed().withFinalizers(platformv1alpha1.FinalizerServicelet, "example.com/backup")),
			allowed: true,
		},
		{
			name:    "front door removes another finalizer",
			req:     request(frontDoor, authenticated, update, "", placed().withFinalizers("example.com/backup", platformv1alpha1.FinalizerServicelet), placed()),
			message: []string{"metadata.finalizers", `"example.com/backup"`, "only add or remove its finalizer " + platformv1alpha1.FinalizerServicelet},
		},
		{
			name:    "front door changes the runtime label",
			req:     request(frontDoor, authenticated, update, "", placed(), placed().withLabel(platformv1alpha1.LabelRuntime, "rt-2")),
			message: []string{"metadata.labels", `"` + platformv1alpha1.LabelRuntime + `"`},
		},
		{
			name:    "front door changes spec",
			req:     request(frontDoor, authenticated, update, "", placed(), placed().with("spec", "deletionPolicy", "Orphan")),
			message: []string{"must not change spec"},
		},
		{
			name:    "front door annotates",
			req:     request(frontDoor, authenticated, update, "", placed(), placed().withAnnotation("example.com/note", "hi")),
			message: []string{"metadata.annotations", `"example.com/note"`},
		},
		{
			name: "front door sets an owner reference",
			req: request(frontDoor, authenticated, update, "", placed(), placed().with("metadata", "ownerReferences",
				[]any{map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "1"}})),
			message: []string{"metadata.ownerReferences"},
		},
		{
			name: "front door writes Ready and its connection secret",
			req: request(frontDoor, authenticated, update, status, placed(), placed().
				withCondition(map[string]any{"type": "Ready", "status": "True", "reason": "Available", "message": "", "lastTransitionTime": "2025-01-01T11:00:00Z", "observedGeneration": 1}).
				with("status", "connectionSecretRef", map[string]any{"name": "orders-conn"}).
				with("status", "observedGeneration", 1)),
			allowed: true,
		},
		{
			name:    "front door restates Scheduled as a typed client does",
			req:     request(frontDoor, authenticated, update, status, stored, restated),
			allowed: true,
		},
		{
			name:    "front door writes status of a capability that is not scheduled",
			req:     request(frontDoor, authenticated, update, status, unplaced(), unplaced().with("status", "observedGeneration", 1)),
			allowed: true,
		},
		{
			name:    "front door changes Scheduled",
			req:     request(frontDoor, authenticated, update, status, placed(), placed().withCondition(scheduledChanged)),
			message: []string{"must not change the Scheduled condition", "the scheduler writes it"},
		},
		{
			name:    "front door forges Scheduled=True",
			req:     request(frontDoor, authenticated, update, status, unplaced(), unplaced().withCondition(scheduledTrue())),
			message: []string{"must not add the Scheduled condition"},
		},
		{
			name: "front door reports Scheduled=True and the location of a capability the scheduler approved",
			req: request(frontDoor, authenticated, update, status, placed().withoutCondition("Scheduled"),
				placed().with("status", "location", map[string]any{"region": "eu-de", "country": "DE"})),
			allowed: true,
		},
		{
			name: "front door turns a Scheduled=False from before into True on an approved capability",
			req: request(frontDoor, authenticated, update, status,
				placed().withCondition(map[string]any{"type": "Scheduled", "status": "False", "reason": "Unschedulable", "message": "no runtime fits", "lastTransitionTime": "2025-01-01T08:00:00Z", "observedGeneration": 1}),
				placed()),
			allowed: true,
		},
		{
			name: "front door reports Scheduled=True of a capability without the servicelet's finalizer",
			req: request(frontDoor, authenticated, update, status, placed().withoutCondition("Scheduled").with("metadata", "finalizers", nil),
				placed().with("metadata", "finalizers", nil)),
			message: []string{"must not add the Scheduled condition"},
		},
		{
			name: "front door reports Scheduled=True with another reason",
			req: request(frontDoor, authenticated, update, status, placed().withoutCondition("Scheduled"),
				placed().withCondition(map[string]any{"type": "Scheduled", "status": "True", "reason": "Forged", "message": "", "lastTransitionTime": "2025-01-01T09:00:00Z", "observedGeneration": 1})),
			message: []string{"must not add the Scheduled condition"},
		},
		{
			name:    "front door sets status.location of a capability not approved",
			req:     request(frontDoor, authenticated, update, status, unplaced(), unplaced().with("status", "location", map[string]any{"region": "eu-de"})),
			message: []string{"must not change status.location"},
		},
		{
			name:    "front door moves status.location",
			req:     request(frontDoor, authenticated, update, status, placed().with("status", "location", map[string]any{"region": "eu-de"}), placed().with("status", "location", map[string]any{"region": "us-east"})),
			message: []string{"must not change status.location", "the scheduler writes"},
		},
		{
			name:    "front door writes its own status fields",
			req:     request(frontDoor, authenticated, update, status, placed().with("status", "location", map[string]any{"region": "eu-de"}), placed().with("status", "location", map[string]any{"region": "eu-de"}).with("status", "observedGeneration", 1)),
			allowed: true,
		},
		{
			name:    "front door removes Scheduled",
			req:     request(frontDoor, authenticated, update, status, placed(), placed().withoutCondition("Scheduled")),
			message: []string{"must not remove the Scheduled condition"},
		},
		{
			name:    "front door creates",
			req:     request(frontDoor, authenticated, create, "", nil, unplaced()),
			message: []string{"servicelets do not create capabilities"},
		},
		{
			name:    "front door creates the status subresource",
			req:     request(frontDoor, authenticated, create, status, nil, unplaced()),
			message: []string{"servicelets do not create capabilities"},
		},
		{
			name:    "front door writes another subresource",
			req:     request(frontDoor, authenticated, update, "scale", placed(), placed()),
			message: []string{"scale subresource"},
		},

		// The coordinator and operators.
		{
			name:    "coordinator sets the runtime label",
			req:     request(coordinator, authenticated, update, "", unplaced(), unplaced().with("spec", "runtimeName", "rt-1").withLabel(platformv1alpha1.LabelRuntime, "rt-1")),
			allowed: true,
		},
		{
			name:    "coordinator changes the runtime label",
			req:     request(coordinator, authenticated, update, "", placed(), placed().withLabel(platformv1alpha1.LabelRuntime, "rt-2")),
			allowed: true,
		},
		{
			name:    "coordinator writes Scheduled",
			req:     request(coordinator, authenticated, update, status, unplaced(), unplaced().withCondition(scheduledTrue())),
			allowed: true,
		},
		{
			name:    "kcp admin removes the servicelet's finalizer",
			req:     request("kcp-admin", []string{"system:authenticated", "system:kcp:admin"}, update, "", placed(), placed().withFinalizers()),
			allowed: true,
		},
		{
			name:    "system:masters writes status",
			req:     request("root", []string{"system:masters"}, update, status, unplaced(), unplaced().withCondition(scheduledTrue())),
			allowed: true,
		},

		// Requests the webhook cannot read.
		{name: "no request", req: nil, message: []string{"no request"}},
		{
			name: "object is not JSON",
			req: func() *admissionv1.AdmissionRequest {
				r := request(tenant, authenticated, create, "", nil, nil)
				r.Object.Raw = []byte(`{"metadata": `)
				return r
			}(),
			message: []string{"cannot decode the object"},
		},
		{
			name:    "update without the old object",
			req:     request(tenant, authenticated, update, "", nil, placed()),
			message: []string{"carries no old object"},
		},
		{
			name:    "object is null",
			req:     request(frontDoor, authenticated, update, "", placed(), nil),
			message: []string{"carries no object"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allowed, msg := Decide(testRules, tt.req)
			if allowed != tt.allowed {
				t.Fatalf("allowed = %v (message %q), want %v", allowed, msg, tt.allowed)
			}
			if allowed && msg != "" {
				t.Errorf("allowed with message %q, want none", msg)
			}
			if !allowed && msg == "" {
				t.Errorf("refused without a message")
			}
			for _, want := range tt.message {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestDecideEmptyRulesMatchNobody(t *testing.T) {
	req := request("", nil, admissionv1.Update, "status", unplaced(), unplaced().withCondition(scheduledTrue()))
	if allowed, _ := Decide(Rules{}, req); allowed {
		t.Fatalf("a user with an empty name passed as coordinator or front door of empty Rules")
	}
}
