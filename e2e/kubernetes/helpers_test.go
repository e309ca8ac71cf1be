package kubernetes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubernetesv1alpha1 "github.com/msp-dev/msp/apis/kubernetes/v1alpha1"
	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
)

// space is a Space in a region, with resources as name/quantity pairs.
func space(name, region string, resources ...string) *kubernetesv1alpha1.Space {
	s := &kubernetesv1alpha1.Space{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
	if region != "" {
		s.Spec.Placement.Regions = []string{region}
	}
	if len(resources) > 0 {
		s.Spec.Resources = corev1.ResourceList{}
		for i := 0; i+1 < len(resources); i += 2 {
			s.Spec.Resources[corev1.ResourceName(resources[i])] = resource.MustParse(resources[i+1])
		}
	}
	return s
}

func create(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("failed to create %s: %v", o.GetName(), err)
		}
	}
}

// update applies change to the Space's latest version (the servicelet writes it too).
func update(t *testing.T, c client.Client, s *kubernetesv1alpha1.Space, change func()) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(s), s); err != nil {
			return err
		}
		change()
		return c.Update(context.Background(), s)
	})
	if err != nil {
		t.Fatalf("failed to update %s: %v", s.Name, err)
	}
}

// waitSpace waits until the Space's condition has status, and returns the Space.
func waitSpace(t *testing.T, c client.Client, name, condType string, status metav1.ConditionStatus, timeout time.Duration) *kubernetesv1alpha1.Space {
	t.Helper()
	s := &kubernetesv1alpha1.Space{}
	framework.Eventually(t, timeout, fmt.Sprintf("%s of space %s to be %s", condType, name, status), func(ctx context.Context) (bool, string, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, s); err != nil {
			return false, "", err
		}
		cond := meta.FindStatusCondition(s.Status.Conditions, condType)
		if cond == nil {
			return false, "no condition yet", nil
		}
		return cond.Status == status, fmt.Sprintf("%s %s: %s", cond.Status, cond.Reason, cond.Message), nil
	})
	return s
}

// waitGone waits until the Space is deleted (its finalizer released).
func waitGone(t *testing.T, c client.Client, name string, timeout time.Duration) {
	t.Helper()
	framework.Eventually(t, timeout, "space "+name+" to be gone", func(ctx context.Context) (bool, string, error) {
		err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, &kubernetesv1alpha1.Space{})
		if client.IgnoreNotFound(err) != nil {
			return false, "", err
		}
		return err != nil, "still there", nil
	})
}

// spaceKubeconfig writes the kubeconfig of the Space's connection Secret to a file, as
// a tenant would save it, and returns its path.
func spaceKubeconfig(t *testing.T, c client.Client, s *kubernetesv1alpha1.Space) string {
	t.Helper()
	if s.Status.ConnectionSecretRef == nil {
		t.Fatalf("space %s has no connection Secret", s.Name)
	}
	var secret corev1.Secret
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: s.Namespace, Name: s.Status.ConnectionSecretRef.Name}, &secret); err != nil {
		t.Fatal(err)
	}
	raw := secret.Data["kubeconfig"]
	if len(raw) == 0 {
		t.Fatalf("Secret %s has no kubeconfig; keys: %v", secret.Name, keys(secret.Data))
	}
	path := filepath.Join(t.TempDir(), s.Name+".kubeconfig")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// refused runs kubectl and fails the test unless kubectl fails with want in its output.
func refused(t *testing.T, env *framework.Env, kubeconfig, stdin, want string, args ...string) string {
	t.Helper()
	res := env.Kubectl(t, kubeconfig, stdin, args...)
	if res.Err == nil {
		t.Fatalf("kubectl %s succeeded, want it refused (%q): %s", strings.Join(args, " "), want, res.Stdout)
	}
	if !strings.Contains(res.Stderr, want) {
		t.Fatalf("kubectl %s was refused with %q, want %q", strings.Join(args, " "), res.Stderr, want)
	}
	return strings.TrimSpace(res.Stderr)
}

// runtimeReady waits until the twin's Ready condition has status, and returns its message.
func runtimeReady(t *testing.T, c client.Client, name string, status metav1.ConditionStatus, timeout time.Duration) string {
	t.Helper()
	var msg string
	framework.Eventually(t, timeout, fmt.Sprintf("runtime %s Ready=%s", name, status), func(ctx context.Context) (bool, string, error) {
		var rt platformv1alpha1.ServiceRuntime
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &rt); err != nil {
			return false, "", err
		}
		cond := meta.FindStatusCondition(rt.Status.Conditions, platformv1alpha1.ConditionReady)
		if cond == nil {
			return false, "no Ready condition", nil
		}
		msg = cond.Message
		return cond.Status == status, fmt.Sprintf("%s %s: %s", cond.Status, cond.Reason, cond.Message), nil
	})
	return msg
}
