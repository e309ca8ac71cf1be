// Package local tests the embedded default behind `make run` (cmd/msp-local) the way a
// newcomer uses it: start it, follow the printed lines with kubectl, press Ctrl-C, start
// it again on the same data. It starts its own kcp, apart from the shared e2e one.
package local

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msp-dev/msp/e2e/framework"
)

func TestMakeRunStartsStopsAndResumes(t *testing.T) {
	bin, err := framework.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()

	// First start: a fresh data folder, left running like `make run`.
	cmd := exec.Command(filepath.Join(bin, "msp-local"), "--home", home, "--kcp", filepath.Join(bin, "kcp"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	output := waitForLine(t, stdout, "Press Ctrl-C to stop.", 4*time.Minute)
	go io.Copy(io.Discard, stdout) //nolint:errcheck // drain the rest

	kubeconfig := match(t, output, `export KUBECONFIG=(\S+)`)
	if !strings.Contains(output, "Coordinator of root:providers:postgres running") {
		t.Fatalf("msp-local did not start the coordinator:\n%s", output)
	}
	if !strings.Contains(output, "created or updated") {
		t.Fatalf("msp-local did not report the bootstrap:\n%s", output)
	}

	// The lines it printed work: kubectl ws into the demo tenant, get the capability kind.
	kubectl := func(args ...string) string {
		t.Helper()
		c := exec.Command(framework.KubectlIn(bin), args...)
		c.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := kubectl("ws", ":root:tenants:acme"); !strings.Contains(out, "root:tenants:acme") {
		t.Fatalf("kubectl ws :root:tenants:acme = %q", out)
	}
	if out := kubectl("get", "postgresdatabases"); !strings.Contains(out, "No resources found") {
		t.Fatalf("kubectl get postgresdatabases = %q, want an empty list", out)
	}

	// The walkthrough: a database that must stay in Germany becomes Ready on the German
	// runtime, with its connection Secret.
	kubectlIn := func(stdin string, args ...string) (string, error) {
		c := exec.Command(framework.KubectlIn(bin), args...)
		c.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+bin+":"+os.Getenv("PATH"))
		c.Stdin = strings.NewReader(stdin)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	if out, err := kubectlIn("apiVersion: postgres.msp.dev/v1alpha1\nkind: PostgresDatabase\nmetadata: {name: orders}\nspec: {placement: {countries: [DE]}}\n", "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	framework.Eventually(t, 2*time.Minute, "orders to be Ready on local-eu-de", func(context.Context) (bool, string, error) {
		out, err := kubectlIn("", "get", "postgresdatabase", "orders", "-o", `jsonpath={.spec.runtimeName} {.status.conditions[?(@.type=="Ready")].status}`)
		return err == nil && out == "local-eu-de True", out, nil
	})
	encoded := kubectl("get", "secret", "postgresdatabase-orders", "-o", "jsonpath={.data.uri}")
	uri, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil || len(uri) == 0 {
		t.Fatalf("the connection Secret has no uri (%q): %v", encoded, err)
	}
	// What the README does with psql: connect with the Secret's uri.
	conn, err := pgx.Connect(context.Background(), string(uri))
	if err != nil {
		t.Fatalf("connecting with the Secret's uri: %v", err)
	}
	var one int
	if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Errorf("querying the database: %v", err)
	}
	conn.Close(context.Background())

	// The Space lines: a namespace of acme's own on the local Kubernetes cluster, used
	// with plain kubectl and the kubeconfig from its connection Secret.
	if out, err := kubectlIn("apiVersion: kubernetes.msp.dev/v1alpha1\nkind: Space\nmetadata: {name: team}\nspec: {placement: {regions: [eu-de]}, resources: {cpu: \"2\", memory: 4Gi}}\n", "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply (Space): %v\n%s", err, out)
	}
	framework.Eventually(t, 2*time.Minute, "space team to be Ready on local-k8s-eu-de", func(context.Context) (bool, string, error) {
		out, err := kubectlIn("", "get", "space", "team", "-o", `jsonpath={.spec.runtimeName} {.status.conditions[?(@.type=="Ready")].status}`)
		return err == nil && out == "local-k8s-eu-de True", out, nil
	})
	teamKubeconfig, err := base64.StdEncoding.DecodeString(kubectl("get", "secret", "space-team", "-o", "jsonpath={.data.kubeconfig}"))
	if err != nil || len(teamKubeconfig) == 0 {
		t.Fatalf("the Space's Secret has no kubeconfig: %v", err)
	}
	teamFile := filepath.Join(t.TempDir(), "team.kubeconfig")
	if err := os.WriteFile(teamFile, teamKubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	team := func(args ...string) (string, error) {
		c := exec.Command(framework.KubectlIn(bin), append([]string{"--kubeconfig", teamFile}, args...)...)
		out, err := c.CombinedOutput()
		return string(out), err
	}
	if out, err := team("create", "deployment", "web", "--image=nginx", "--replicas=2"); err != nil {
		t.Fatalf("kubectl create deployment in the space: %v\n%s", err, out)
	}
	if out, err := team("get", "deployments,pods,resourcequotas"); err != nil || !strings.Contains(out, "deployment.apps/web") {
		t.Errorf("kubectl get deployments,pods,resourcequotas in the space = %q (%v)", out, err)
	}
	if out, err := team("get", "namespaces"); err == nil || !strings.Contains(out, "forbidden") {
		t.Errorf("kubectl get namespaces with the space's kubeconfig = %q (%v), want Forbidden", out, err)
	}

	// That kubeconfig is acme's own user, not a kcp admin: all of acme, nothing of root.
	if out, err := kubectlIn("", "auth", "can-i", "*", "*"); err != nil || strings.TrimSpace(out) != "yes" {
		t.Errorf("in acme, the tenant's kubeconfig can-i '*' '*' = %q (%v), want yes", out, err)
	}
	if out, err := kubectlIn("", "ws", ":root"); err != nil {
		t.Fatalf("kubectl ws :root: %v\n%s", err, out)
	}
	if out, _ := kubectlIn("", "auth", "can-i", "delete", "workspaces"); !regexp.MustCompile(`(?m)^no\b`).MatchString(out) {
		t.Errorf("at root, the tenant's kubeconfig can-i delete workspaces = %q, want no", out)
	}

	// The globex lines: the operator creates globex's workspace and makes globex's own
	// user its admin; that user sees its workspace and nothing of acme.
	operator := func(args ...string) string {
		t.Helper()
		c := exec.Command(framework.KubectlIn(bin), args...)
		c.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(home, "admin.kubeconfig"), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s (operator): %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	operator("ws", ":root:tenants")
	operator("create", "workspace", "globex", "--type", "root:platform:tenant", "--enter")
	operator("create", "clusterrolebinding", "globex-admin", "--clusterrole=cluster-admin", "--user=globex-admin")
	globex := func(args ...string) (string, error) {
		c := exec.Command(framework.KubectlIn(bin), args...)
		c.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(home, "globex.kubeconfig"), "PATH="+bin+":"+os.Getenv("PATH"))
		out, err := c.CombinedOutput()
		return string(out), err
	}
	framework.Eventually(t, time.Minute, "globex's user to list its PostgresDatabases", func(context.Context) (bool, string, error) {
		out, err := globex("get", "postgresdatabases")
		return err == nil && strings.Contains(out, "No resources found"), out, nil
	})
	if out, _ := globex("auth", "can-i", "*", "*"); strings.TrimSpace(out) != "yes" {
		t.Errorf("in globex, globex's user can-i '*' '*' = %q, want yes", out)
	}
	if out, err := globex("get", "postgresdatabases", "--server", strings.Replace(match(t, string(mustRead(t, filepath.Join(home, "globex.kubeconfig"))), `server: (\S+)`), "root:tenants:globex", "root:tenants:acme", 1)); err == nil {
		t.Errorf("globex's user read acme's PostgresDatabases:\n%s", out)
	}

	// No running component holds an admin credential: only msp-local, the bootstrap.
	assertNoAdminCredential(t, home, "https://127.0.0.1:"+strconv.Itoa(kcpPort(t, home)))

	// Ctrl-C stops everything: msp-local exits and kcp's port is free again.
	port := kcpPort(t, home)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("msp-local exited with %v after Ctrl-C", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("msp-local did not exit within a minute of Ctrl-C")
	}
	if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
		t.Fatalf("kcp's port %d is still taken after Ctrl-C: %v", port, err)
	} else {
		l.Close()
	}

	// Nothing it started is left: no process refers to its state folder.
	if out, _ := exec.Command("pgrep", "-a", "-f", home).Output(); len(out) > 0 {
		t.Fatalf("processes left after Ctrl-C:\n%s", out)
	}

	// Second start on the same data: resumes on the same port, the bootstrap changes nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "msp-local"), "--home", home, "--kcp", filepath.Join(bin, "kcp"), "--exit-when-ready").CombinedOutput()
	if err != nil {
		t.Fatalf("second start failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "0 created or updated") {
		t.Errorf("second start changed the tree:\n%s", out)
	}
	if !strings.Contains(string(out), "127.0.0.1:"+strconv.Itoa(port)) {
		t.Errorf("second start did not resume on port %d:\n%s", port, out)
	}
	if got := kcpPort(t, home); got != port {
		t.Errorf("recorded port changed from %d to %d", port, got)
	}
}

// waitForLine reads r until a line contains want and returns everything read.
func waitForLine(t *testing.T, r io.Reader, want string, timeout time.Duration) string {
	t.Helper()
	type result struct {
		out string
		ok  bool
	}
	done := make(chan result, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), want) {
				done <- result{b.String(), true}
				return
			}
		}
		done <- result{b.String(), false}
	}()
	select {
	case res := <-done:
		if !res.ok {
			t.Fatalf("msp-local ended before printing %q:\n%s", want, res.out)
		}
		return res.out
	case <-time.After(timeout):
		t.Fatalf("msp-local did not print %q within %s", want, timeout)
	}
	return ""
}

func match(t *testing.T, s, expr string) string {
	t.Helper()
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("output has no match for %s:\n%s", expr, s)
	}
	return m[1]
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func kcpPort(t *testing.T, home string) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(home, "kcp", "msp-ports.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Secure int `json:"securePort"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p.Secure
}
