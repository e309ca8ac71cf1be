package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// component is a running process of the platform and the kubeconfig it was given.
type component struct {
	pid        string
	binary     string
	kubeconfig string
}

// runningComponents finds the processes started for home (their arguments name files
// in it) that were given a --kubeconfig.
func runningComponents(t *testing.T, home string) []component {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []component
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(raw, []byte(home)) {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if i := slices.Index(args, "--kubeconfig"); i >= 0 && i+1 < len(args) {
			out = append(out, component{pid: e.Name(), binary: filepath.Base(args[0]), kubeconfig: args[i+1]})
		}
	}
	return out
}

// assertNoAdminCredential checks that no running component holds a kcp admin credential:
// each one's kubeconfig credential, presented to kcp itself, is either refused or a user
// that is not an admin and may not do everything at root.
func assertNoAdminCredential(t *testing.T, home, kcpURL string) {
	t.Helper()
	admin, err := clientcmd.BuildConfigFromFlags("", filepath.Join(home, "kcp", "admin.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	adminToken := admin.BearerToken
	platform, err := clientcmd.BuildConfigFromFlags("", filepath.Join(home, "kcp", "platform.kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	comps := runningComponents(t, home)
	seen := map[string]int{}
	for _, c := range comps {
		seen[c.binary]++
		cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig)
		if err != nil {
			t.Errorf("%s (pid %s): cannot read its kubeconfig %s: %v", c.binary, c.pid, c.kubeconfig, err)
			continue
		}
		if cfg.BearerToken != "" && (cfg.BearerToken == adminToken || cfg.BearerToken == platform.BearerToken) {
			t.Errorf("%s (pid %s) holds the admin's token (%s)", c.binary, c.pid, c.kubeconfig)
		}
		// The same credential, straight at kcp's root.
		direct := rest.AnonymousClientConfig(cfg)
		direct.BearerToken, direct.BearerTokenFile = cfg.BearerToken, cfg.BearerTokenFile
		direct.CertData, direct.KeyData, direct.CertFile, direct.KeyFile = cfg.CertData, cfg.KeyData, cfg.CertFile, cfg.KeyFile
		direct.Host = kcpURL + "/clusters/root"
		direct.TLSClientConfig.CAData, direct.TLSClientConfig.CAFile = admin.CAData, admin.CAFile
		who, verdict := judge(direct)
		t.Logf("%-15s pid %-7s %s: %s", c.binary, c.pid, who, verdict)
		if verdict != "" && strings.HasPrefix(verdict, "ADMIN") {
			t.Errorf("%s (pid %s, %s) is a kcp admin: %s", c.binary, c.pid, c.kubeconfig, verdict)
		}
	}
	for _, want := range []string{"postgres-coordinator", "msp-frontdoor", "postgres-servicelet"} {
		if seen[want] == 0 {
			t.Errorf("no running %s found among %v", want, comps)
		}
	}
}

// judge presents cfg's credential to kcp: who it is, and whether it is an admin.
func judge(cfg *rest.Config) (string, string) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "?", err.Error()
	}
	ctx := context.Background()
	ssr, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if apierrors.IsUnauthorized(err) {
		return "refused by kcp (401)", "not a kcp credential at all"
	}
	if err != nil {
		return "?", fmt.Sprintf("SelfSubjectReview: %v", err)
	}
	u := ssr.Status.UserInfo
	who := fmt.Sprintf("%s %v", u.Username, u.Groups)
	for _, g := range u.Groups {
		if g == "system:kcp:admin" || g == "system:masters" {
			return who, "ADMIN: in group " + g
		}
	}
	sar, err := cs.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "*", Group: "*", Resource: "*"},
	}}, metav1.CreateOptions{})
	switch {
	case apierrors.IsForbidden(err):
		return who, "may not even ask at root"
	case err != nil:
		return who, fmt.Sprintf("SelfSubjectAccessReview: %v", err)
	case sar.Status.Allowed:
		return who, "ADMIN: may do everything at root"
	}
	return who, "not allowed everything at root"
}
