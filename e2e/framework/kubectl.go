package framework

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// KubectlResult is what one kubectl call printed and how it ended.
type KubectlResult struct {
	Stdout, Stderr string
	Err            error
}

// Kubectl runs the real kubectl with the given kubeconfig and the built kcp plugins
// first on PATH, and returns what it printed. It does not fail the test by itself.
func (e *Env) Kubectl(t testing.TB, kubeconfig string, stdin string, args ...string) KubectlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.KubectlPath(), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+e.Bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return KubectlResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// KubectlPath is the kubectl the project built into the bin folder, or the one on PATH.
func (e *Env) KubectlPath() string {
	return KubectlIn(e.Bin)
}

// KubectlIn returns bin/kubectl when it exists, else "kubectl" from PATH.
func KubectlIn(bin string) string {
	if p := filepath.Join(bin, "kubectl"); fileExists(p) {
		return p
	}
	return "kubectl"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// MustKubectl is Kubectl that fails the test when kubectl fails.
func (e *Env) MustKubectl(t testing.TB, kubeconfig string, stdin string, args ...string) string {
	t.Helper()
	res := e.Kubectl(t, kubeconfig, stdin, args...)
	if res.Err != nil {
		t.Fatalf("kubectl %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.Err, res.Stdout, res.Stderr)
	}
	return res.Stdout
}
