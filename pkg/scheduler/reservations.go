package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/pkg/scheduler/framework"
)

// Reservations make placements by several active coordinator replicas safe: before a
// replica assigns a capability, it records the placement in the chosen runtime's twin
// (the annotation platform.msp.dev/reservations), in one patch guarded by the
// resourceVersion it checked the runtime's room against. kcp admits one such write per
// version, so two replicas that choose the same runtime at once are serialized: the
// second sees the first's reservation, checks again and, when the runtime is full,
// chooses anew. Every replica counts the reservations on a runtime that its own caches
// do not show yet (see Accounting.Snapshot); a reservation expires after the scheduler's
// AssumeTTL, by when every replica's cache shows the assignment itself.
//
// It costs one write on the runtime's twin per placement, so a single coordinator (the
// default, or leader election) does without it.
type Reservations struct {
	// Client writes the twins (the provider workspace).
	Client client.Client
	// Reader reads a twin from the server after a conflict.
	Reader client.Reader
	// Self names this replica in its reservations.
	Self string
}

// Reservation is one placement recorded on a runtime's twin.
type Reservation struct {
	// Requests is what the capability uses on the runtime.
	Requests corev1.ResourceList `json:"r"`
	// Tenant is the capability's tenant key (for the per-tenant spread).
	Tenant string `json:"k,omitempty"`
	// At is when it was made, in Unix seconds.
	At int64 `json:"t"`
	// By is the replica that made it.
	By string `json:"by,omitempty"`
}

// ParseReservations reads a runtime's reservations, by capability key.
func ParseReservations(rt *platformv1alpha1.ServiceRuntime) (map[string]Reservation, error) {
	raw := rt.Annotations[platformv1alpha1.AnnotationReservations]
	out := map[string]Reservation{}
	if raw == "" {
		return out, nil
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		return map[string]Reservation{}, fmt.Errorf("the reservations of runtime %s are not valid JSON: %w", rt.Name, err)
	}
	return out, nil
}

// noRoomError says that a runtime's twin shows reservations that leave no room for the
// capability a replica chose it for.
type noRoomError struct {
	runtime, reason string
}

func (e *noRoomError) Error() string {
	return fmt.Sprintf("runtime %s no longer fits once other replicas' reservations count: %s", e.runtime, e.reason)
}

// maxReserveAttempts bounds the conflicts a reservation retries before the capability
// goes back to the queue (and is decided again).
const maxReserveAttempts = 5

// reserve records the capability with key on rt's twin, once its room, counted with the
// reservations of the version being written, is checked again. rt comes from the cache
// and is not modified; runtimes are the ones the decision saw.
func (s *Scheduler) reserve(ctx context.Context, key, tenantKey string, c *framework.Capability, rt *platformv1alpha1.ServiceRuntime, runtimes []*platformv1alpha1.ServiceRuntime) error {
	r := s.opts.Reservations
	obj := rt.DeepCopy()
	for attempt := 1; ; attempt++ {
		entries, _ := ParseReservations(obj) // a malformed record is replaced
		now := s.opts.Now()
		for k, e := range entries {
			if now.Sub(time.Unix(e.At, 0)) > s.opts.AssumeTTL {
				delete(entries, k)
			}
		}
		view := make([]*platformv1alpha1.ServiceRuntime, 0, len(runtimes))
		for _, other := range runtimes {
			if other.Name != obj.Name {
				view = append(view, other)
			}
		}
		view = append(view, obj)
		var info *framework.RuntimeInfo
		for _, i := range s.acct.Snapshot(view, key, tenantKey) {
			if i.Runtime == obj {
				info = i
			}
		}
		if st := s.opts.Framework.Check(ctx, c, info); st != nil {
			if st.Code == framework.Error {
				return st.Err
			}
			return &noRoomError{runtime: obj.Name, reason: st.Reason}
		}
		entries[key] = Reservation{Requests: c.Requests, Tenant: tenantKey, At: now.Unix(), By: r.Self}
		raw, err := json.Marshal(entries)
		if err != nil {
			return err
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": obj.ResourceVersion,
			"annotations":     map[string]any{platformv1alpha1.AnnotationReservations: string(raw)},
		}})
		if err != nil {
			return err
		}
		err = r.Client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
		if err == nil || !apierrors.IsConflict(err) || attempt == maxReserveAttempts {
			return err
		}
		fresh := &platformv1alpha1.ServiceRuntime{}
		if err := r.Reader.Get(ctx, client.ObjectKeyFromObject(obj), fresh); err != nil {
			return err
		}
		obj = fresh
	}
}
