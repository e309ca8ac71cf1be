package shards

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
	"github.com/msp-dev/msp/pkg/servicelet/testdriver"
)

var (
	partitionGVR = schema.GroupVersionResource{Group: "topology.kcp.io", Version: "v1alpha1", Resource: "partitions"}
	sliceGVR     = schema.GroupVersionResource{Group: "apis.kcp.io", Version: "v1alpha1", Resource: "apiexportendpointslices"}
)

// regionSlice creates, in the provider workspace, a Partition of the shards labelled
// region=region and the export's endpoint slice <export>-<region> over it, labelled
// with the region for the coordinator.
func regionSlice(t *testing.T, p *framework.Provider, region string) string {
	t.Helper()
	ctx := context.Background()
	dyn := p.Workspace.Dynamic
	partition := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "topology.kcp.io/v1alpha1", "kind": "Partition",
		"metadata": map[string]any{"name": region},
		"spec":     map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"region": region}}},
	}}
	if _, err := dyn.Resource(partitionGVR).Create(ctx, partition, metav1.CreateOptions{}); err != nil {
		t.Fatalf("failed to create the Partition %s: %v", region, err)
	}
	name := p.Export + "-" + region
	slice := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apis.kcp.io/v1alpha1", "kind": "APIExportEndpointSlice",
		"metadata": map[string]any{"name": name, "labels": map[string]any{platformv1alpha1.LabelShardRegion: region}},
		"spec":     map[string]any{"export": map[string]any{"path": p.Workspace.Path, "name": p.Export}, "partition": region},
	}}
	if _, err := dyn.Resource(sliceGVR).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatalf("failed to create the endpoint slice %s: %v", name, err)
	}
	return name
}

// A provider that keeps capabilities in their shard's region: a Partition and an
// endpoint slice per region, the coordinator with --shard-locality, a servicelet per
// region that follows only its region's slice. A database ordered in a workspace on
// shard-1 (eu-fr) lands on the eu-fr runtime, one on root (eu-de) on the eu-de runtime;
// each runtime's servicelet sees only its region's workspaces. A tenant on shard-1 that
// asks for eu-de is told that its shard's region rules the runtime out.
func TestShardLocality(t *testing.T) {
	env := framework.Current(t)
	p := env.NewProvider(t)
	de, fr := regionSlice(t, p, "eu-de"), regionSlice(t, p, "eu-fr")
	onDE := p.NewTenantOnShard(t, "root").Client(t)
	env.SetShardSchedulable(t, "shard-1", true)
	onFR := p.NewTenantOnShard(t, "shard-1").Client(t)
	env.SetShardSchedulable(t, "shard-1", false)
	// Each region's slice lists one endpoint: its shard's.
	shardURL := map[string]string{}
	for _, s := range env.Server.Shards() {
		shardURL[s.Name] = s.URL
	}
	for slice, shard := range map[string]string{de: "root", fr: "shard-1"} {
		framework.Eventually(t, time.Minute, "the endpoint slice "+slice+" to list "+shard, func(ctx context.Context) (bool, string, error) {
			got, err := p.Workspace.Dynamic.Resource(sliceGVR).Get(ctx, slice, metav1.GetOptions{})
			if err != nil {
				return false, "", err
			}
			endpoints, _, _ := unstructured.NestedSlice(got.Object, "status", "endpoints")
			conditions, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
			if len(endpoints) != 1 {
				return false, fmt.Sprintf("endpoints %v, conditions %v", endpoints, conditions), nil
			}
			u, _ := endpoints[0].(map[string]any)["url"].(string)
			return strings.HasPrefix(u, shardURL[shard]+"/"), fmt.Sprintf("endpoint %s (shard %s at %s)", u, shard, shardURL[shard]), nil
		})
	}
	slDE := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "rt-de", Region: "eu-de", Country: "DE", Args: []string{"--endpoint-slice", de}})
	slFR := p.StartServicelet(t, framework.ServiceletSpec{Runtime: "rt-fr", Region: "eu-fr", Country: "FR", Args: []string{"--endpoint-slice", fr}})
	p.StartCoordinator(t, "--shard-locality")

	ctx := context.Background()
	create := func(c client.Client, name string, regions ...string) {
		t.Helper()
		db := &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
		db.Spec.Placement.Regions = regions
		if err := c.Create(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	readyOn := func(c client.Client, name, runtime string) {
		t.Helper()
		framework.Eventually(t, 2*time.Minute, name+" Ready on "+runtime, func(ctx context.Context) (bool, string, error) {
			db := &postgresv1alpha1.PostgresDatabase{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, db); err != nil {
				return false, "", err
			}
			ready := meta.IsStatusConditionTrue(db.Status.Conditions, platformv1alpha1.ConditionReady)
			return db.Spec.RuntimeName == runtime && ready, fmt.Sprintf("on %q, Ready %v", db.Spec.RuntimeName, ready), nil
		})
	}
	create(onDE, "berlin")
	create(onFR, "paris")
	readyOn(onDE, "berlin", "rt-de")
	readyOn(onFR, "paris", "rt-fr")
	if n := testdriver.Calls(slFR.StateDir, "creates.log", "default", "berlin") + testdriver.Calls(slDE.StateDir, "creates.log", "default", "paris"); n != 0 {
		t.Errorf("a database was made outside its shard's region (%d creates)", n)
	}

	create(onFR, "wants-de", "eu-de")
	want := "outside region eu-fr of the workspace's kcp shard"
	framework.Eventually(t, time.Minute, "wants-de to say why it waits", func(ctx context.Context) (bool, string, error) {
		db := &postgresv1alpha1.PostgresDatabase{}
		if err := onFR.Get(ctx, client.ObjectKey{Namespace: "default", Name: "wants-de"}, db); err != nil {
			return false, "", err
		}
		cond := meta.FindStatusCondition(db.Status.Conditions, platformv1alpha1.ConditionScheduled)
		if cond == nil {
			return false, "no Scheduled condition", nil
		}
		return cond.Reason == platformv1alpha1.ReasonUnschedulable && strings.Contains(cond.Message, want), cond.Reason + ": " + cond.Message, nil
	})
}
