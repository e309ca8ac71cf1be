package kcpconfig

import (
	"testing"

	"k8s.io/client-go/rest"
)

func TestForWorkspace(t *testing.T) {
	tests := []struct {
		name, host, path, want string
	}{
		{name: "base URL", host: "https://127.0.0.1:6443", path: "root:tenants:acme", want: "https://127.0.0.1:6443/clusters/root:tenants:acme"},
		{name: "trailing slash", host: "https://127.0.0.1:6443/", path: "root", want: "https://127.0.0.1:6443/clusters/root"},
		{name: "already a workspace", host: "https://kcp.example:443/clusters/root", path: "root:platform", want: "https://kcp.example:443/clusters/root:platform"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &rest.Config{Host: tt.host, BearerToken: "t"}
			got := ForWorkspace(cfg, tt.path)
			if got.Host != tt.want {
				t.Errorf("host = %q, want %q", got.Host, tt.want)
			}
			if got.BearerToken != "t" {
				t.Errorf("credentials were not kept")
			}
			if cfg.Host != tt.host {
				t.Errorf("input config was modified: %q", cfg.Host)
			}
		})
	}
}
