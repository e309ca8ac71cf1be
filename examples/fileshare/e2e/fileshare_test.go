// Package e2e shows the example provider working through msp's own path: a real kcp, the
// scheduler of msp-coordinator, the example's servicelet built from this module, a
// tenant ordering a FileShare with a client of its own workspace.
package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/examples/fileshare/apiexport"
)

func TestMain(m *testing.M) { framework.Main(m) }

// A tenant orders a FileShare; msp's scheduler places it on the example's runtime, the
// example's servicelet creates and serves it, and the tenant reads its file with the
// URL and token of the connection Secret. A file removed behind the driver's back is
// written again; deleting the FileShare removes the share.
func TestTenantOrdersAFileShare(t *testing.T) {
	env := framework.Current(t)
	bin := filepath.Join(t.TempDir(), "fileshare-servicelet")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/fileshare-servicelet").CombinedOutput(); err != nil {
		t.Fatalf("building the example's servicelet: %v\n%s", err, out)
	}

	p := env.NewProviderFrom(t, apiexport.FS, "fileshare.example.dev")
	p.StartCoordinator(t)
	shares := t.TempDir()
	p.StartProviderServicelet(t, bin, framework.ServiceletSpec{Runtime: "files-de", Region: "eu-de", Country: "DE", Capabilities: 10,
		Args: []string{"--shares-dir", shares, "--resync-interval", "2s"}})

	c := p.NewTenant(t).Client(t)
	share := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "fileshare.example.dev/v1alpha1", "kind": "FileShare",
		"metadata": map[string]any{"name": "docs", "namespace": "default"},
		"spec": map[string]any{
			"placement": map[string]any{"countries": []any{"DE"}},
			"files":     map[string]any{"README": "hello from msp\n"},
		},
	}}
	ctx := context.Background()
	if err := c.Create(ctx, share); err != nil {
		t.Fatalf("creating the FileShare: %v", err)
	}
	secretName := waitReady(t, c, "docs")

	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: secretName}, secret); err != nil {
		t.Fatalf("reading the connection Secret: %v", err)
	}
	url, token := string(secret.Data["url"]), string(secret.Data["token"])
	if got := fetch(t, url+"README", token); got != "hello from msp\n" {
		t.Fatalf("GET %sREADME = %q, want the spec's content", url, got)
	}
	if code := status(t, url+"README", "wrong-token"); code != http.StatusForbidden {
		t.Errorf("GET with a wrong token: %d, want 403", code)
	}

	// Drift: the file goes missing on the server; the servicelet's resync writes it again.
	matches, _ := filepath.Glob(filepath.Join(shares, "*", "README"))
	if len(matches) != 1 {
		t.Fatalf("want one README under %s, found %v", shares, matches)
	}
	if err := os.Remove(matches[0]); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "the removed file to be written again", func(context.Context) (bool, string, error) {
		_, err := os.Stat(matches[0])
		return err == nil, fmt.Sprint(err), nil
	})

	// Delete: the share and its Secret go.
	if err := c.Delete(ctx, share); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "the share to be removed", func(ctx context.Context) (bool, string, error) {
		_, err := os.Stat(filepath.Dir(matches[0]))
		gone := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: "docs"}, share.DeepCopy()) != nil
		return os.IsNotExist(err) && gone, fmt.Sprintf("folder: %v, object gone: %v", err, gone), nil
	})
	if code := status(t, url+"README", token); code != http.StatusForbidden && code != http.StatusNotFound {
		t.Errorf("GET after delete: %d, want 403 or 404", code)
	}
}

// waitReady waits until the FileShare is Ready and returns its connection Secret's name.
func waitReady(t *testing.T, c client.Client, name string) string {
	t.Helper()
	var secret string
	framework.Eventually(t, 2*time.Minute, name+" to be Ready", func(ctx context.Context) (bool, string, error) {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("fileshare.example.dev/v1alpha1")
		u.SetKind("FileShare")
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, u); err != nil {
			return false, "", err
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		var list []metav1.Condition
		for _, raw := range conds {
			m, _ := raw.(map[string]any)
			typ, _ := m["type"].(string)
			st, _ := m["status"].(string)
			msg, _ := m["message"].(string)
			list = append(list, metav1.Condition{Type: typ, Status: metav1.ConditionStatus(st), Message: msg})
		}
		secret, _, _ = unstructured.NestedString(u.Object, "status", "connectionSecretRef", "name")
		ready := meta.FindStatusCondition(list, "Ready")
		if ready == nil {
			return false, fmt.Sprintf("conditions: %v", list), nil
		}
		return ready.Status == metav1.ConditionTrue && secret != "", ready.Message, nil
	})
	return secret
}

func fetch(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

func status(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
