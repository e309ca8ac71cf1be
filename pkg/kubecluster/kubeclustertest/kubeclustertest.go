// Package kubeclustertest starts a real Kubernetes control plane for a test: etcd, a
// kube-apiserver and a kube-controller-manager built by `make tools` into msp's _bin (or
// the folder MSP_BIN names), stopped when the test ends.
package kubeclustertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msp-dev/msp/pkg/kubecluster"
)

// BinDir finds the folder with kube-apiserver: MSP_BIN, else _bin at the module's root.
func BinDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("MSP_BIN"); dir != "" {
		return dir
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("cannot find the module's root: %v", err)
	}
	return filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "_bin")
}

// Start starts a cluster named after the test on an etcd of its own.
func Start(t testing.TB) *kubecluster.Cluster {
	t.Helper()
	bin := BinDir(t)
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Fatalf("this test needs %s in %s: run make tools (%v)", b, bin, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	etcd, err := kubecluster.StartEtcd(ctx, kubecluster.EtcdOptions{Binary: filepath.Join(bin, "etcd"), Dir: filepath.Join(dir, "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Stop)
	cl, err := kubecluster.Start(ctx, kubecluster.Options{
		Name: "test", Dir: filepath.Join(dir, "cluster"), Etcd: etcd.Endpoint(),
		APIServer: filepath.Join(bin, "kube-apiserver"), ControllerManager: filepath.Join(bin, "kube-controller-manager"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Stop) // before etcd's (cleanups run last first)
	return cl
}
