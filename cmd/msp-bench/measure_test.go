package main

import "testing"

func TestStoredCountsBothKcpLabelStyles(t *testing.T) {
	v028 := map[string]float64{
		`etcd_requests_total{operation="create",type="postgresdatabases.postgres.msp.dev"}`: 3,
		`etcd_requests_total{operation="update",type="postgresdatabases.postgres.msp.dev"}`: 4,
		`etcd_requests_total{operation="get",type="postgresdatabases.postgres.msp.dev"}`:    100,
		`etcd_requests_total{operation="create",type="secrets"}`:                            9,
	}
	v030 := map[string]float64{
		`etcd_requests_total{group="postgres.msp.dev",operation="create",resource="postgresdatabases"}`: 3,
		`etcd_requests_total{group="postgres.msp.dev",operation="update",resource="postgresdatabases"}`: 4,
		`etcd_requests_total{group="postgres.msp.dev",operation="get",resource="postgresdatabases"}`:    100,
		`etcd_requests_total{group="",operation="create",resource="secrets"}`:                           9,
	}
	for name, m := range map[string]map[string]float64{"v0.28": v028, "v0.30": v030} {
		if got := stored(m, "postgresdatabases.postgres.msp.dev"); got != 7 {
			t.Errorf("%s: stored capabilities = %v, want 7 (create and update, not get)", name, got)
		}
		if got := stored(m, "secrets"); got != 9 {
			t.Errorf("%s: stored secrets = %v, want 9", name, got)
		}
	}
}
