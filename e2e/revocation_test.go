package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/identity"
	"github.com/msp-dev/msp/pkg/kcpconfig"
)

// Removing a runtime revokes its servicelet's credential: the coordinator deletes the
// servicelet's ServiceAccount, the front door refuses the token from then on and cuts the
// watch the servicelet had open, and the servicelet cannot register the runtime again.
func TestRemovingARuntimeRevokesItsServicelet(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	p := env.NewProvider(t)
	p.StartCoordinator(t)
	p.NewTenant(t) // the endpoint slice lists the virtual workspace once a tenant binds
	sl := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "gone-1", Region: "eu-de", Country: "DE"})
	ctx := context.Background()
	c := p.Client(t)
	rt := &platformv1alpha1.ServiceRuntime{}
	framework.Eventually(t, time.Minute, "runtime gone-1 to register", func(ctx context.Context) (bool, string, error) {
		err := c.Get(ctx, client.ObjectKey{Name: "gone-1"}, rt)
		return err == nil, "", client.IgnoreNotFound(err)
	})

	// The servicelet's own credential, through the front door: a watch of its runtime's
	// capabilities, held open.
	cfg := authzConfig(t, sl.Kubeconfig)
	provider := kcpconfig.ForWorkspace(cfg, p.Path)
	vw := rest.CopyConfig(cfg)
	vw.Host = p.Identities.FrontDoorURL + authzURLPath(authzEndpointURL(t, p)) + "/clusters/*"
	dyn, err := dynamic.NewForConfig(vw)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "postgres.msp.dev", Version: "v1alpha1", Resource: "postgresdatabases"}
	w, err := dyn.Resource(gvr).Watch(ctx, metav1.ListOptions{LabelSelector: platformv1alpha1.LabelRuntime + "=gone-1"})
	if err != nil {
		t.Fatalf("the servicelet's watch through the front door: %v", err)
	}
	defer w.Stop()
	twin := func() error {
		_, err := dynamic.NewForConfigOrDie(provider).Resource(platformv1alpha1.SchemeGroupVersion.WithResource("serviceruntimes")).Get(ctx, "gone-1", metav1.GetOptions{})
		return err
	}
	if err := twin(); err != nil {
		t.Fatalf("before the removal, the servicelet cannot read its twin: %v", err)
	}

	if err := c.Delete(ctx, rt); err != nil {
		t.Fatal(err)
	}
	removed := time.Now()
	accounts := kubernetes.NewForConfigOrDie(p.Config).CoreV1().ServiceAccounts(identity.ServiceletNamespace)
	framework.Eventually(t, time.Minute, "the servicelet's ServiceAccount to be deleted", func(ctx context.Context) (bool, string, error) {
		_, err := accounts.Get(ctx, identity.ServiceAccountName("gone-1"), metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
	select {
	case _, open := <-w.ResultChan():
		for open {
			_, open = <-w.ResultChan()
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the watch the servicelet held open was not cut within 30s of the runtime's removal")
	}
	t.Logf("the servicelet's watch ended %s after the runtime was removed", time.Since(removed).Round(time.Millisecond))
	framework.Eventually(t, 30*time.Second, "the front door to refuse the servicelet's token", func(context.Context) (bool, string, error) {
		err := twin()
		var status apierrors.APIStatus
		if e, ok := err.(apierrors.APIStatus); ok {
			status = e
		}
		return status != nil && status.Status().Code == http.StatusUnauthorized, fmt.Sprint(err), nil
	})
	// The servicelet keeps running but cannot bring its runtime back.
	time.Sleep(5 * time.Second)
	if err := c.Get(ctx, client.ObjectKey{Name: "gone-1"}, &platformv1alpha1.ServiceRuntime{}); !apierrors.IsNotFound(err) {
		t.Errorf("runtime gone-1 is back after its servicelet was revoked (%v)", err)
	}
}
