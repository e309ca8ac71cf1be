// Package deploy holds msp's deployment manifests (kustomize folders, applied with
// kubectl). Code that sets up what a manifest describes on its own (msp's local
// runtimes) applies the same files from here, so the two never drift apart.
package deploy

import "embed"

// KubernetesServicelet is deploy/kubernetes-servicelet: the Kubernetes provider's
// servicelet inside the cluster it serves, with its rights there.
//
//go:embed kubernetes-servicelet/*.yaml
var KubernetesServicelet embed.FS
