// Package kcpconfig addresses kcp workspaces from one rest config: the same server and
// credentials, a different /clusters/<path> suffix.
package kcpconfig

import (
	"fmt"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// BaseURL strips a trailing /clusters/<path> from a kcp URL.
func BaseURL(host string) string {
	if i := strings.Index(host, "/clusters/"); i >= 0 {
		return host[:i]
	}
	return strings.TrimSuffix(host, "/")
}

// ForWorkspace returns a copy of cfg that addresses the workspace at path, for example
// "root:tenants:acme".
func ForWorkspace(cfg *rest.Config, path string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Host = BaseURL(c.Host) + "/clusters/" + path
	return c
}

// Base returns a copy of cfg that addresses the server itself, outside any workspace.
func Base(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Host = BaseURL(c.Host)
	return c
}

// Load reads a kubeconfig (empty: $KUBECONFIG and the usual rules) with an optional
// context, as every msp command does.
func Load(kubeconfig, context string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("failed to load kubeconfig: %w", err)
	}
	return cfg, nil
}
