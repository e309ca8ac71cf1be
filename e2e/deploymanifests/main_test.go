// Package deploymanifests checks msp's deployment manifests (every folder under deploy/)
// against a real kube-apiserver: each folder, rendered by the project's kubectl
// (kubectl kustomize), passes a server-side dry run, holds the kinds it should, and keeps
// to least privilege (no root, no privilege, resource requests, the admin credential
// only in the bootstrap Job, no cluster token where the cluster's API is not needed,
// network policies). It needs no kcp: TestMain starts one etcd and one kube-apiserver
// (pkg/kubecluster) for the whole package.
package deploymanifests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/msp-dev/msp/pkg/kubecluster"
)

// env is the package's shared cluster and tools.
var env struct {
	// bin holds kubectl, kube-apiserver and etcd (the project's _bin, or $MSP_BIN).
	bin string
	// deploy is the repository's deploy/ folder.
	deploy string
	// admin is the kube-apiserver's admin kubeconfig.
	admin string
}

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploymanifests:", err)
		return 1
	}
	bin, err := binDir(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploymanifests:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "msp-deploymanifests-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploymanifests:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	etcd, err := kubecluster.StartEtcd(ctx, kubecluster.EtcdOptions{Binary: filepath.Join(bin, "etcd"), Dir: filepath.Join(dir, "etcd")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploymanifests: etcd:", err)
		return 1
	}
	defer etcd.Stop()
	// The API server alone: a dry run needs no controllers.
	cl, err := kubecluster.Start(ctx, kubecluster.Options{
		Name: "deploy", Dir: filepath.Join(dir, "cluster"), Etcd: etcd.Endpoint(),
		APIServer: filepath.Join(bin, "kube-apiserver"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "deploymanifests: kube-apiserver:", err)
		return 1
	}
	defer cl.Stop()
	fmt.Printf("deploymanifests: kube-apiserver at %s ready in %s\n", cl.URL(), time.Since(start).Round(100*time.Millisecond))

	env.bin, env.deploy, env.admin = bin, filepath.Join(root, "deploy"), cl.AdminKubeconfigPath()
	return m.Run()
}

// repoRoot is the folder above the working directory that holds go.mod.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no go.mod above %s", wd)
}

// binDir is $MSP_BIN or the repository's _bin, with the tools this test runs.
func binDir(root string) (string, error) {
	bin := filepath.Join(root, "_bin")
	if d := os.Getenv("MSP_BIN"); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return "", err
		}
		bin = abs
	}
	var missing []error
	for _, tool := range []string{"kubectl", "kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			missing = append(missing, fmt.Errorf("%s has no %s", bin, tool))
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: run 'make tools' (or set MSP_BIN)", errors.Join(missing...))
	}
	return bin, nil
}
