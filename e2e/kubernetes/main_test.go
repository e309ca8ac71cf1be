// Package kubernetes holds the end-to-end tests of the Kubernetes provider: real kcp,
// real Kubernetes control planes (kube-apiserver, kube-controller-manager, etcd; no
// kubelet) as runtimes, and real kubectl for the tenants.
package kubernetes

import (
	"testing"

	"github.com/msp-dev/msp/e2e/framework"
)

func TestMain(m *testing.M) { framework.Main(m) }
