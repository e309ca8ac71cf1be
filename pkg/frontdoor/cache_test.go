package frontdoor

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
)

func account(name, uid string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ServiceletNamespace, UID: types.UID(uid)}}
}

func TestServiceAccountInformerRevokes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fake.NewClientset(account("servicelet-rt-a", "uid-a"), account("servicelet-rt-b", "uid-b"), account("builder", "uid-c"))
	var mu sync.Mutex
	var revoked []string
	inf, err := serviceAccountInformer(ctx, cs, func(rt string) { mu.Lock(); revoked = append(revoked, rt); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("not synced")
	}
	c := &caches{accounts: inf}
	if uid, exists, known := c.serviceAccountUID("rt-a"); uid != "uid-a" || !exists || !known {
		t.Errorf("rt-a: %q %v %v", uid, exists, known)
	}
	if _, exists, known := c.serviceAccountUID("rt-z"); exists || !known {
		t.Errorf("rt-z: exists %v known %v", exists, known)
	}
	sas := cs.CoreV1().ServiceAccounts(ServiceletNamespace)
	if err := sas.Delete(ctx, "builder", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sas.Delete(ctx, "servicelet-rt-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sas.Update(ctx, account("servicelet-rt-b", "uid-b2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(revoked)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(revoked) != 2 || revoked[0] != "rt-a" || revoked[1] != "rt-b" {
		t.Errorf("revoked %v, want [rt-a rt-b] (deleted, and replaced with a new UID)", revoked)
	}
}

func TestNewChecksOptions(t *testing.T) {
	cfg := &rest.Config{Host: "https://kcp.example:6443/clusters/root"}
	ok := Options{Config: cfg, Workspace: testWorkspace, Export: testExport, PublicURL: "https://127.0.0.1:7443"}
	if f, err := New(ok); err != nil || f.opts.Audience != DefaultAudience || f.opts.MaxTokenExpiration != time.Hour || f.base.Host != "https://kcp.example:6443" {
		t.Fatalf("New: %v", err)
	}
	for name, mutate := range map[string]func(o *Options){
		"no config":              func(o *Options) { o.Config = nil },
		"no export":              func(o *Options) { o.Export = "" },
		"a public URL with path": func(o *Options) { o.PublicURL = "https://fd.example/kcp" },
		"a public URL no URL":    func(o *Options) { o.PublicURL = "fd.example:7443" },
		"too short tokens":       func(o *Options) { o.MaxTokenExpiration = time.Minute },
	} {
		o := ok
		mutate(&o)
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}
