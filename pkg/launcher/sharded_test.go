package launcher

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/msp-dev/msp/pkg/kcpconfig"
)

func TestChooseTopologyRecordsGrowsAndRefuses(t *testing.T) {
	opts := Options{DataDir: t.TempDir(), BindAddress: "127.0.0.1", Shards: 2}
	first, err := chooseTopology(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Shards) != 2 || first.Shards[0].Name != "root" || first.Shards[1].Name != "shard-1" {
		t.Fatalf("shards = %+v", first.Shards)
	}
	seen := map[int]bool{}
	for _, p := range allPorts(first) {
		if seen[p] {
			t.Errorf("port %d chosen twice: %+v", p, first)
		}
		seen[p] = true
	}
	if len(seen) != 4+3*2 {
		t.Errorf("%d ports chosen, want 10: %+v", len(seen), first)
	}
	again, err := chooseTopology(opts)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("second start chose %+v, want the recorded %+v", again, first)
	}
	opts.Shards = 3
	grown, err := chooseTopology(opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(grown.Shards) != 3 || grown.Shards[2].Name != "shard-2" || fmt.Sprint(grown.Shards[:2]) != fmt.Sprint(first.Shards) || grown.FrontProxy != first.FrontProxy {
		t.Errorf("grown to %+v from %+v", grown, first)
	}
	opts.Shards = 2
	if _, err := chooseTopology(opts); err == nil || !strings.Contains(err.Error(), "with 3 shards") {
		t.Errorf("err = %v, want one saying the folder has 3 shards", err)
	}

	single := Options{DataDir: t.TempDir(), BindAddress: "127.0.0.1"}
	if _, err := choosePorts(single); err != nil {
		t.Fatal(err)
	}
	single.Shards = 2
	if _, err := chooseTopology(single); err == nil || !strings.Contains(err.Error(), "single shard") {
		t.Errorf("err = %v, want one refusing to shard a single-shard folder", err)
	}
}

func TestStartSingleOnShardedFolderSaysHowMany(t *testing.T) {
	opts := Options{DataDir: t.TempDir(), BindAddress: "127.0.0.1", Shards: 3}
	if _, err := chooseTopology(opts); err != nil {
		t.Fatal(err)
	}
	kcp := filepath.Join(t.TempDir(), "kcp")
	if err := os.WriteFile(kcp, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Options{DataDir: opts.DataDir, Binary: kcp})
	if err == nil || !strings.Contains(err.Error(), "with 3 shards") {
		t.Errorf("err = %v, want one saying the folder has 3 shards", err)
	}
}

func TestStartShardedWithoutFrontProxySaysWhatToDo(t *testing.T) {
	bin := t.TempDir()
	kcp := filepath.Join(bin, "kcp")
	if err := os.WriteFile(kcp, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	_, err := Start(t.Context(), Options{DataDir: t.TempDir(), Binary: kcp, Shards: 2})
	if err == nil || !strings.Contains(err.Error(), "kcp-front-proxy") || !strings.Contains(err.Error(), "make tools") {
		t.Errorf("err = %v, want one naming kcp-front-proxy and 'make tools'", err)
	}
}

// binDir is the folder of kcp and its companions: $MSP_BIN, or _bin at the repository root.
func binDir(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("MSP_BIN"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "_bin")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory; set MSP_BIN")
		}
		dir = parent
	}
}

var (
	workspacesGVR = schema.GroupVersionResource{Group: "tenancy.kcp.io", Version: "v1alpha1", Resource: "workspaces"}
)

// kcpShardHash is the value of kcp's internal.tenancy.kcp.io/shard annotation of a
// Workspace scheduled to shard: base36 of the name's SHA-224, its first 8 characters.
func kcpShardHash(shard string) string {
	sum := sha256.Sum224([]byte(shard))
	s := new(big.Int).SetBytes(sum[:]).Text(36)
	for _, b := range sum {
		if b != 0 {
			break
		}
		s = "0" + s
	}
	return s[:8]
}

// TestShardedTopology starts two shards, the cache server and the front proxy, puts a
// workspace on each shard through the front proxy, and stops and starts shard-1 and then
// everything on the same data.
func TestShardedTopology(t *testing.T) {
	bin := binDir(t)
	for _, b := range []string{"kcp", "kcp-front-proxy", "cache-server"} {
		if !isExecutable(filepath.Join(bin, b)) {
			t.Fatalf("%s is missing in %s: run 'make tools' (or set MSP_BIN)", b, bin)
		}
	}
	ctx := t.Context()
	timing := func(what string, since time.Time) {
		t.Logf("timing: %-55s %s", what, time.Since(since).Round(100*time.Millisecond))
	}
	const label = "msp.dev/test-shard"
	opts := Options{
		Binary:  filepath.Join(bin, "kcp"),
		DataDir: filepath.Join(t.TempDir(), "kcp"),
		Shards:  2,
		Users:   []string{"tenant-a"},
		ShardLabels: map[string]map[string]string{
			"root":    {label: "root"},
			"shard-1": {label: "shard-1", "region": "eu-test"},
		},
	}
	start := time.Now()
	server, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Stop() })
	timing("start: 2 shards, cache server, front proxy", start)

	shards := server.Shards()
	if len(shards) != 2 || shards[0].Name != "root" || shards[1].Name != "shard-1" {
		t.Fatalf("Shards() = %+v", shards)
	}
	for _, sh := range shards {
		if sh.URL == server.URL() || !sh.Running {
			t.Errorf("shard %+v: want a running shard with a URL other than the front proxy's %s", sh, server.URL())
		}
	}
	if !strings.HasPrefix(server.URL(), "https://127.0.0.1:") {
		t.Errorf("URL() = %s", server.URL())
	}

	admin, err := server.RESTConfig()
	if err != nil {
		t.Fatal(err)
	}
	if kcpconfig.BaseURL(admin.Host) != server.URL() {
		t.Errorf("the admin kubeconfig addresses %s, want the front proxy %s", admin.Host, server.URL())
	}
	platform, err := clientcmd.BuildConfigFromFlags("", server.PlatformKubeconfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if kcpconfig.BaseURL(platform.Host) != server.URL() {
		t.Errorf("the platform kubeconfig addresses %s, want the front proxy %s", platform.Host, server.URL())
	}

	// The shards carry their labels.
	rootDyn := dynamic.NewForConfigOrDie(kcpconfig.ForWorkspace(admin, "root"))
	for _, sh := range shards {
		obj, err := rootDyn.Resource(shardsGVR).Get(ctx, sh.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("shard %s: %v", sh.Name, err)
		}
		for k, v := range opts.ShardLabels[sh.Name] {
			if obj.GetLabels()[k] != v {
				t.Errorf("shard %s labels = %v, want %s=%s", sh.Name, obj.GetLabels(), k, v)
			}
		}
	}

	// A workspace on each shard, through the front proxy with the platform's token.
	step := time.Now()
	platformDyn := dynamic.NewForConfigOrDie(kcpconfig.ForWorkspace(platform, "root"))
	ws := map[string]string{"root": "on-root", "shard-1": "on-shard-1"}
	for shard, name := range ws {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "tenancy.kcp.io/v1alpha1",
			"kind":       "Workspace",
			"metadata":   map[string]any{"name": name},
			"spec": map[string]any{"location": map[string]any{"selector": map[string]any{
				"matchLabels": map[string]any{label: shard}}}},
		}}
		if _, err := platformDyn.Resource(workspacesGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create workspace %s: %v", name, err)
		}
	}
	clusters := map[string]string{}
	for shard, name := range ws {
		var got *unstructured.Unstructured
		eventually(t, 2*time.Minute, "workspace "+name+" Ready", func() error {
			got, err = platformDyn.Resource(workspacesGVR).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if phase, _, _ := unstructured.NestedString(got.Object, "status", "phase"); phase != "Ready" {
				return fmt.Errorf("phase %q", phase)
			}
			return nil
		})
		if h := got.GetAnnotations()["internal.tenancy.kcp.io/shard"]; h != kcpShardHash(shard) {
			t.Errorf("workspace %s: shard annotation %q, want %q (the hash of %s)", name, h, kcpShardHash(shard), shard)
		}
		url, _, _ := unstructured.NestedString(got.Object, "spec", "URL")
		if !strings.HasPrefix(url, server.URL()+"/clusters/") {
			t.Errorf("workspace %s: URL %s, want one at the front proxy %s", name, url, server.URL())
		}
		clusters[shard], _, _ = unstructured.NestedString(got.Object, "spec", "cluster")
		if shard == "shard-1" && got.GetLabels()["region"] != "eu-test" {
			t.Errorf("workspace %s: labels %v, want the region of shard-1", name, got.GetLabels())
		}
	}
	timing("two workspaces Ready, one on each shard", step)

	// A ConfigMap in each, written and read through the front proxy.
	step = time.Now()
	cmClient := func(cfg *rest.Config, path string) kubernetes.Interface {
		return kubernetes.NewForConfigOrDie(kcpconfig.ForWorkspace(cfg, path))
	}
	for shard, name := range ws {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "where"}, Data: map[string]string{"shard": shard}}
		eventually(t, time.Minute, "ConfigMap in "+name, func() error {
			_, err := cmClient(platform, "root:"+name).CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return nil
			}
			return err
		})
		readConfigMap(t, ctx, cmClient(admin, "root:"+name), shard)
	}
	// Each shard serves its own workspace's logical cluster, and not the other's.
	for _, sh := range shards {
		cfg, err := clientcmd.BuildConfigFromFlags("", sh.KubeconfigPath)
		if err != nil {
			t.Fatal(err)
		}
		for shard, cluster := range clusters {
			_, err := cmClient(cfg, cluster).CoreV1().ConfigMaps("default").Get(ctx, "where", metav1.GetOptions{})
			if (shard == sh.Name) != (err == nil) {
				t.Errorf("shard %s, logical cluster %s of the workspace on %s: err = %v", sh.Name, cluster, shard, err)
			}
		}
	}
	timing("ConfigMaps written and read through the front proxy", step)

	// A user's static token works through the front proxy, in the workspace that binds it.
	step = time.Now()
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-a"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "tenant-a"}},
	}
	if _, err := cmClient(platform, "root:on-shard-1").RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	userKubeconfig := filepath.Join(t.TempDir(), "tenant-a.kubeconfig")
	if err := server.UserKubeconfig("tenant-a", "root:on-shard-1", userKubeconfig); err != nil {
		t.Fatal(err)
	}
	user, err := clientcmd.BuildConfigFromFlags("", userKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "tenant-a reads its workspace", func() error {
		_, err := kubernetes.NewForConfigOrDie(user).CoreV1().ConfigMaps("default").Get(ctx, "where", metav1.GetOptions{})
		return err
	})
	if _, err := cmClient(user, "root:on-root").CoreV1().ConfigMaps("default").Get(ctx, "where", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("tenant-a in root:on-root: err = %v, want forbidden", err)
	}
	timing("user token through the front proxy", step)

	// shard-1 stops: the workspace on root still answers.
	step = time.Now()
	if err := server.StopShard("shard-1"); err != nil {
		t.Fatal(err)
	}
	timing("StopShard(shard-1)", step)
	if server.Shards()[1].Running {
		t.Errorf("shard-1 runs after StopShard")
	}
	readConfigMap(t, ctx, cmClient(platform, "root:on-root"), "root")
	if _, err := cmClient(platform, "root:on-shard-1").CoreV1().ConfigMaps("default").Get(ctx, "where", metav1.GetOptions{}); err == nil {
		t.Errorf("the workspace on the stopped shard-1 answered")
	}
	select {
	case <-server.Done():
		t.Fatalf("the server is done after StopShard")
	default:
	}
	if err := server.StopShard("root"); err == nil {
		t.Errorf("StopShard(root) did not fail")
	}

	// shard-1 starts again on its data: its ConfigMap is back.
	step = time.Now()
	if err := server.StartShard(ctx, "shard-1"); err != nil {
		t.Fatal(err)
	}
	timing("StartShard(shard-1)", step)
	eventually(t, 2*time.Minute, "shard-1's ConfigMap through the front proxy", func() error {
		_, err := cmClient(platform, "root:on-shard-1").CoreV1().ConfigMaps("default").Get(ctx, "where", metav1.GetOptions{})
		return err
	})
	timing("shard-1's workspace answers through the front proxy again", step)

	// Everything stops and starts again on the same data folder and ports.
	step = time.Now()
	if err := server.Stop(); err != nil {
		t.Fatal(err)
	}
	timing("Stop", step)
	select {
	case <-server.Done():
	default:
		t.Errorf("Done is open after Stop")
	}
	step = time.Now()
	again, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	server = again
	timing("start again on the same data", step)
	if server.URL() != kcpconfig.BaseURL(platform.Host) {
		t.Errorf("URL after restart = %s, was %s", server.URL(), kcpconfig.BaseURL(platform.Host))
	}
	for shard, name := range ws {
		eventually(t, 2*time.Minute, "ConfigMap in "+name+" after the restart", func() error {
			_, err := cmClient(platform, "root:"+name).CoreV1().ConfigMaps("default").Get(ctx, "where", metav1.GetOptions{})
			return err
		})
		readConfigMap(t, ctx, cmClient(platform, "root:"+name), shard)
	}
	if _, err := kubernetes.NewForConfigOrDie(user).CoreV1().ConfigMaps("default").Get(ctx, "where", metav1.GetOptions{}); err != nil {
		t.Errorf("tenant-a after the restart: %v", err)
	}
	timing("total", start)
}

func readConfigMap(t *testing.T, ctx context.Context, client kubernetes.Interface, shard string) {
	t.Helper()
	cm, err := client.CoreV1().ConfigMaps("default").Get(ctx, "where", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read the ConfigMap of the workspace on %s: %v", shard, err)
	}
	if cm.Data["shard"] != shard {
		t.Errorf("ConfigMap data = %v, want shard=%s", cm.Data, shard)
	}
}

// eventually retries f every 250ms until it succeeds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
