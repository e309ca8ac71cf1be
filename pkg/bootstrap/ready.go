package bootstrap

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
)

// readiness tells whether an object is ready for what comes after it, and if not, what
// it is waiting for.
type readiness func(*unstructured.Unstructured) (bool, string)

// readyChecks are keyed by "Kind.group". Kinds without an entry are ready once applied.
var readyChecks = map[string]readiness{
	"Workspace.tenancy.kcp.io":     phaseIs("Ready"),
	"APIBinding.apis.kcp.io":       phaseIs("Bound"),
	"WorkspaceType.tenancy.kcp.io": conditionTrue("Ready"),
	"APIExport.apis.kcp.io": func(u *unstructured.Unstructured) (bool, string) {
		hash, _, _ := unstructured.NestedString(u.Object, "status", "identityHash")
		return hash != "", "status.identityHash is empty"
	},
}

func waitReady(ctx context.Context, ws *workspaceClient, obj *unstructured.Unstructured, timeout, interval time.Duration) error {
	check, ok := readyChecks[obj.GetKind()+"."+obj.GroupVersionKind().Group]
	if !ok {
		return nil
	}
	var last string
	err := wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(ctx context.Context) (bool, error) {
		cur, err := ws.get(ctx, obj, timeout, interval)
		if err != nil {
			if isNotFound(err) {
				last = "not found"
				return false, nil
			}
			return false, err
		}
		ready, why := check(cur)
		last = why
		return ready, nil
	})
	if err != nil {
		return fmt.Errorf("%w (last seen: %s)", err, last)
	}
	return nil
}

func phaseIs(want string) readiness {
	return func(u *unstructured.Unstructured) (bool, string) {
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		return phase == want, fmt.Sprintf("phase is %q, want %q", phase, want)
	}
}

func conditionTrue(condType string) readiness {
	return func(u *unstructured.Unstructured) (bool, string) {
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, ok := c.(map[string]any)
			if !ok || m["type"] != condType {
				continue
			}
			return m["status"] == "True", fmt.Sprintf("condition %s is %v: %v", condType, m["status"], m["message"])
		}
		return false, fmt.Sprintf("condition %s not reported yet", condType)
	}
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
