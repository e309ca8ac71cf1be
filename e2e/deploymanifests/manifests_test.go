package deploymanifests

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// expectation is what a folder under deploy/ must render to.
type expectation struct {
	// kinds are exactly the kinds of its objects.
	kinds []string
	// clusterAPI says that its pods talk to the API of the cluster they run in, and so
	// get a ServiceAccount token; every other workload gets none.
	clusterAPI bool
	// egressFenced says that its network policies limit egress too (to named ports and
	// destinations, DNS included), not only ingress.
	egressFenced bool
	// metrics says that its long-running container has a port named metrics, the only
	// one its network policy lets anything in to.
	metrics bool
	// failover: its Deployment runs at least two replicas with --shard-workspaces or
	// --leader-elect, covered by a PodDisruptionBudget.
	failover bool
}

// expected covers every folder under deploy/; a new folder fails
// TestEveryFolderIsChecked until it is added here.
var expected = map[string]expectation{
	"bootstrap": {
		kinds:        []string{"Job", "Namespace", "NetworkPolicy", "ServiceAccount"},
		egressFenced: true,
	},
	"coordinator": {
		kinds:        []string{"Deployment", "Namespace", "NetworkPolicy", "PodDisruptionBudget", "ServiceAccount"},
		egressFenced: true, metrics: true, failover: true,
	},
	"postgres-servicelet": {
		kinds:        []string{"ConfigMap", "Deployment", "Namespace", "NetworkPolicy", "ServiceAccount"},
		egressFenced: true, metrics: true,
	},
	// It manages namespaces in its cluster (rbac.yaml), so it needs its token there.
	"kubernetes-servicelet": {
		kinds: []string{"ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Namespace", "NetworkPolicy",
			"ServiceAccount", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"},
		clusterAPI: true,
	},
	// Plain manifests (no kustomization) for every tenant workspace in kcp; RBAC a
	// kube-apiserver validates the same way.
	"tenant": {
		kinds: []string{"ClusterRole", "ClusterRoleBinding"},
	},
}

// adminSecret is the Secret with kcp's admin kubeconfig: only the bootstrap Job may read it.
const (
	adminSecret  = "kcp-admin-kubeconfig"
	bootstrapJob = "deploy/bootstrap: Job msp-bootstrap"
)

// knownGaps are findings in folders outside this package's scope, logged instead of
// failed; a gap that no longer occurs fails the test, so that it is removed here.
var knownGaps = map[string]string{}

func TestEveryFolderIsChecked(t *testing.T) {
	for _, name := range deployFolders(t) {
		if _, ok := expected[name]; !ok {
			t.Errorf("deploy/%s is not in this test's expectations: add what it must render to", name)
		}
	}
	for name := range expected {
		if !slices.Contains(deployFolders(t), name) {
			t.Errorf("deploy/%s is expected but does not exist", name)
		}
	}
}

// Every folder renders to the kinds it should and passes a server-side dry run against
// the real kube-apiserver, without a PodSecurity warning at the restricted level.
func TestServerSideDryRun(t *testing.T) {
	for _, name := range deployFolders(t) {
		t.Run(name, func(t *testing.T) {
			f := render(t, name)
			if want, got := expected[name].kinds, f.kinds(); !slices.Equal(want, got) {
				t.Errorf("deploy/%s renders the kinds %v, want %v", name, got, want)
			}
			ensureNamespaces(t, f)
			res := kubectl(t, f.rendered, "apply", "--dry-run=server", "-f", "-")
			if res.err != nil {
				t.Fatalf("deploy/%s fails the server-side dry run: %v\n%s%s", name, res.err, res.stdout, res.stderr)
			}
			t.Logf("server-side dry run of deploy/%s:\n%s%s", name, res.stdout, res.stderr)
			if strings.Contains(res.stderr, "would violate PodSecurity") {
				t.Errorf("deploy/%s does not meet the restricted Pod Security Standard:\n%s", name, res.stderr)
			}
			if n := strings.Count(res.stdout, "(server dry run)"); n != len(f.objects) {
				t.Errorf("the dry run answered for %d objects, deploy/%s has %d", n, name, len(f.objects))
			}
		})
	}
}

// ensureNamespaces creates the folder's namespaces for real (a dry run creates nothing,
// and its namespaced objects need them) and lets PodSecurity warn at the restricted level
// too, so that the dry run of a workload says what its pods would violate.
func ensureNamespaces(t *testing.T, f *folder) {
	t.Helper()
	namespaces := f.ofKind("Namespace")
	if len(namespaces) == 0 {
		return
	}
	mustKubectl(t, yamlOf(t, namespaces...), "apply", "-f", "-")
	for _, ns := range namespaces {
		mustKubectl(t, "", "label", "namespace", ns.GetName(), "pod-security.kubernetes.io/warn=restricted", "--overwrite")
	}
}

// No container runs privileged or as root, escalates, writes its root filesystem or
// keeps a capability; every container asks for resources; no pod shares the node's
// namespaces or files.
func TestContainersAreRestricted(t *testing.T) {
	used := map[string]bool{}
	gap := func(t *testing.T, key string) bool {
		if why, ok := knownGaps[key]; ok {
			used[key] = true
			t.Logf("known gap: %s (%s)", key, why)
			return true
		}
		return false
	}
	for _, name := range deployFolders(t) {
		t.Run(name, func(t *testing.T) {
			for _, w := range render(t, name).workloads(t) {
				spec := w.pod.Spec
				if spec.HostNetwork || spec.HostPID || spec.HostIPC {
					t.Errorf("%s shares the node's network, PID or IPC namespace", w)
				}
				for _, v := range spec.Volumes {
					if v.HostPath != nil {
						t.Errorf("%s mounts the node's %s", w, v.HostPath.Path)
					}
				}
				podSC := spec.SecurityContext
				if podSC == nil {
					podSC = &corev1.PodSecurityContext{}
				}
				for _, c := range w.containers() {
					where := fmt.Sprintf("%s, %s", w, c)
					sc := c.SecurityContext
					if sc == nil {
						sc = &corev1.SecurityContext{}
					}
					if sc.Privileged != nil && *sc.Privileged {
						t.Errorf("%s runs privileged", where)
					}
					if nonRoot := first(sc.RunAsNonRoot, podSC.RunAsNonRoot); nonRoot == nil || !*nonRoot {
						t.Errorf("%s may run as root: runAsNonRoot is not true", where)
					}
					if user := first(sc.RunAsUser, podSC.RunAsUser); user == nil || *user == 0 {
						t.Errorf("%s names no user other than root (runAsUser)", where)
					}
					if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
						t.Errorf("%s may escalate its privileges: allowPrivilegeEscalation is not false", where)
					}
					if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
						t.Errorf("%s may write its root filesystem", where)
					}
					if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
						t.Errorf("%s keeps capabilities: drop ALL and add none", where)
					}
					seccomp := sc.SeccompProfile
					if seccomp == nil {
						seccomp = podSC.SeccompProfile
					}
					if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
						t.Errorf("%s runs without a seccomp profile (RuntimeDefault)", where)
					}
					req, lim := c.Resources.Requests, c.Resources.Limits
					if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
						if key := where + ": no resource requests or memory limit"; !gap(t, key) {
							t.Errorf("%s: requests %v, limits %v: want cpu and memory requests and a memory limit", where, req, lim)
						}
					}
					if !pinned(c.Image) {
						t.Errorf("%s: image %q has no tag or digest (or is latest)", where, c.Image)
					}
				}
			}
		})
	}
	for key := range knownGaps {
		if !used[key] {
			t.Errorf("known gap %q no longer occurs: remove it from knownGaps", key)
		}
	}
}

// first returns the first value that is set.
func first[T any](vs ...*T) *T {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

// pinned says whether an image names a tag other than latest, or a digest.
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	name := image[strings.LastIndex(image, "/")+1:]
	_, tag, ok := strings.Cut(name, ":")
	return ok && tag != "" && tag != "latest"
}

// kcp's admin kubeconfig is read by the bootstrap Job and by nothing else; the bootstrap
// reads no other Secret.
func TestAdminCredentialOnlyInTheBootstrapJob(t *testing.T) {
	var readers []string
	for _, name := range deployFolders(t) {
		f := render(t, name)
		for _, w := range f.workloads(t) {
			refs := w.secretRefs()
			if slices.Contains(refs, adminSecret) {
				readers = append(readers, w.String())
			}
			if w.String() == bootstrapJob && !slices.Equal(refs, []string{adminSecret}) {
				t.Errorf("%s reads the Secrets %v, want only %s", w, refs, adminSecret)
			}
		}
		for _, o := range f.objects {
			if o.GetKind() == "Secret" && o.GetName() == adminSecret {
				t.Errorf("deploy/%s ships the admin Secret %s: the operator creates it", name, adminSecret)
			}
		}
	}
	if !slices.Equal(readers, []string{bootstrapJob}) {
		t.Errorf("the admin Secret %s is read by %v, want only %s", adminSecret, readers, bootstrapJob)
	}
}

// Pods get a token of the cluster they run in only when they talk to its API: the
// bootstrap, the coordinator and the PostgreSQL servicelet talk to kcp (or the front
// door) and their PostgreSQL server, the Kubernetes servicelet manages its cluster.
func TestServiceAccountTokens(t *testing.T) {
	for _, name := range deployFolders(t) {
		t.Run(name, func(t *testing.T) {
			f := render(t, name)
			for _, w := range f.workloads(t) {
				sa := w.pod.Spec.ServiceAccountName
				if sa == "" || sa == "default" {
					t.Errorf("%s runs as the namespace's default ServiceAccount: give it its own", w)
				}
				automount := w.pod.Spec.AutomountServiceAccountToken
				var found bool
				for _, o := range f.ofKind("ServiceAccount") {
					if o.GetName() != sa {
						continue
					}
					found = true
					var account corev1.ServiceAccount
					if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &account); err != nil {
						t.Fatal(err)
					}
					automount = first(automount, account.AutomountServiceAccountToken)
				}
				if !found {
					t.Errorf("%s runs as the ServiceAccount %s, which deploy/%s does not define", w, sa, name)
				}
				got := automount == nil || *automount
				if want := expected[name].clusterAPI; got != want {
					t.Errorf("%s: the cluster's token is mounted: %t, want %t (its pods talk to the cluster's API: %t)", w, got, want, want)
				}
			}
		})
	}
}

// Every workload is selected by a network policy that lets nothing in but the metrics
// port, and (where egressFenced) nothing out but named ports to named destinations,
// DNS among them.
func TestNetworkPolicies(t *testing.T) {
	for _, name := range deployFolders(t) {
		exp := expected[name]
		t.Run(name, func(t *testing.T) {
			f := render(t, name)
			var policies []networkingv1.NetworkPolicy
			for _, o := range f.ofKind("NetworkPolicy") {
				var np networkingv1.NetworkPolicy
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &np); err != nil {
					t.Fatal(err)
				}
				policies = append(policies, np)
			}
			for _, w := range f.workloads(t) {
				var ingress, egress bool
				var egressRules []networkingv1.NetworkPolicyEgressRule
				for _, np := range policies {
					sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
					if err != nil {
						t.Fatal(err)
					}
					if np.Namespace != w.obj.GetNamespace() || !sel.Matches(labels.Set(w.pod.Labels)) {
						continue
					}
					for _, pt := range np.Spec.PolicyTypes {
						ingress = ingress || pt == networkingv1.PolicyTypeIngress
						egress = egress || pt == networkingv1.PolicyTypeEgress
					}
					for _, r := range np.Spec.Ingress {
						if len(r.From) == 0 {
							t.Errorf("%s: NetworkPolicy %s lets anyone in", w, np.Name)
						}
						for _, p := range r.Ports {
							if p.Port == nil || p.Port.String() != "metrics" {
								t.Errorf("%s: NetworkPolicy %s lets in port %v; only the port named metrics may be open", w, np.Name, p.Port)
							}
						}
						if len(r.Ports) == 0 {
							t.Errorf("%s: NetworkPolicy %s lets in every port", w, np.Name)
						}
					}
					egressRules = append(egressRules, np.Spec.Egress...)
				}
				if !ingress {
					t.Errorf("%s: no NetworkPolicy of deploy/%s fences its ingress", w, name)
				}
				if !exp.egressFenced {
					continue
				}
				if !egress {
					t.Errorf("%s: no NetworkPolicy of deploy/%s fences its egress", w, name)
				}
				var dns bool
				for _, r := range egressRules {
					if len(r.To) == 0 || len(r.Ports) == 0 {
						t.Errorf("%s: an egress rule lets it reach every destination or every port: %+v", w, r)
					}
					for _, p := range r.Ports {
						dns = dns || (p.Port != nil && p.Port.IntValue() == 53)
					}
				}
				if !dns {
					t.Errorf("%s: its egress rules leave out DNS (port 53)", w)
				}
			}
		})
	}
}

// Long-running containers are probed on ports they declare and expose metrics on a port
// named metrics; the coordinator runs two replicas that fail over (or split the work)
// under a PodDisruptionBudget; the bootstrap Job retries a few times and cleans up.
func TestWorkloadShapes(t *testing.T) {
	for _, name := range deployFolders(t) {
		exp := expected[name]
		t.Run(name, func(t *testing.T) {
			f := render(t, name)
			for _, w := range f.workloads(t) {
				switch w.obj.GetKind() {
				case "Deployment":
					checkDeployment(t, f, w, exp)
				case "Job":
					backoff, hasBackoff, err := unstructured.NestedInt64(w.obj.Object, "spec", "backoffLimit")
					if err != nil || !hasBackoff || backoff > 6 {
						t.Errorf("%s: backoffLimit %d (set: %t, %v), want a few retries", w, backoff, hasBackoff, err)
					}
					if _, hasTTL, err := unstructured.NestedInt64(w.obj.Object, "spec", "ttlSecondsAfterFinished"); err != nil || !hasTTL {
						t.Errorf("%s has no ttlSecondsAfterFinished", w)
					}
					if p := w.pod.Spec.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
						t.Errorf("%s: restartPolicy %q", w, p)
					}
				}
			}
		})
	}
}

func checkDeployment(t *testing.T, f *folder, w workload, exp expectation) {
	t.Helper()
	var metrics bool
	for _, c := range w.pod.Spec.Containers {
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
			metrics = metrics || p.Name == "metrics"
		}
		for what, probe := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			if probe == nil || probe.HTTPGet == nil {
				t.Errorf("%s, container %s: no HTTP %s probe", w, c.Name, what)
				continue
			}
			if port := probe.HTTPGet.Port.String(); !ports[port] {
				t.Errorf("%s, container %s: the %s probe's port %s is not one of its named ports %v", w, c.Name, what, port, ports)
			}
		}
	}
	if exp.metrics && !metrics {
		t.Errorf("%s has no port named metrics", w)
	}
	if !exp.failover {
		return
	}
	if replicas, _, err := unstructured.NestedInt64(w.obj.Object, "spec", "replicas"); err != nil || replicas < 2 {
		t.Errorf("%s runs %d replicas (%v), want at least 2", w, replicas, err)
	}
	var args []string
	for _, c := range w.pod.Spec.Containers {
		args = append(args, c.Args...)
	}
	if !slices.Contains(args, "--shard-workspaces") && !slices.Contains(args, "--leader-elect") {
		t.Errorf("%s runs neither --shard-workspaces nor --leader-elect: %v", w, args)
	}
	var covered bool
	for _, o := range f.ofKind("PodDisruptionBudget") {
		var pdb policyv1.PodDisruptionBudget
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &pdb); err != nil {
			t.Fatal(err)
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		if pdb.Namespace == w.obj.GetNamespace() && sel.Matches(labels.Set(w.pod.Labels)) && (pdb.Spec.MinAvailable != nil || pdb.Spec.MaxUnavailable != nil) {
			covered = true
		}
	}
	if !covered {
		t.Errorf("%s is covered by no PodDisruptionBudget", w)
	}
}

// The checks can fail: a Deployment with an invalid field value is refused by the
// server's dry run with the server's message, a container that may escalate its
// privileges draws the restricted level's warning, and such a Pod is refused in
// msp-system.
func TestDryRunRefusesBrokenManifests(t *testing.T) {
	f := render(t, "coordinator")
	ensureNamespaces(t, f)
	deployments := f.ofKind("Deployment")
	if len(deployments) != 1 {
		t.Fatalf("deploy/coordinator has %d Deployments, want 1", len(deployments))
	}

	broken := deployments[0].DeepCopy()
	if err := unstructured.SetNestedField(broken.Object, int64(-1), "spec", "replicas"); err != nil {
		t.Fatal(err)
	}
	res := kubectl(t, yamlOf(t, broken), "apply", "--dry-run=server", "-f", "-")
	const invalid = "spec.replicas: Invalid value: -1"
	if res.err == nil || !strings.Contains(res.stderr, invalid) {
		t.Fatalf("a Deployment with replicas -1 passed the server-side dry run or failed otherwise (err %v), want %q:\n%s%s", res.err, invalid, res.stdout, res.stderr)
	}
	t.Logf("refused as it should be: %s", strings.TrimSpace(res.stderr))

	escalating := deployments[0].DeepCopy()
	containers, _, _ := unstructured.NestedSlice(escalating.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	if err := unstructured.SetNestedField(c, true, "securityContext", "allowPrivilegeEscalation"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedSlice(escalating.Object, containers, "spec", "template", "spec", "containers"); err != nil {
		t.Fatal(err)
	}
	const violation = "allowPrivilegeEscalation != false"
	res = mustKubectl(t, yamlOf(t, escalating), "apply", "--dry-run=server", "-f", "-")
	if !strings.Contains(res.stderr, "would violate PodSecurity") || !strings.Contains(res.stderr, violation) {
		t.Errorf("a coordinator that may escalate its privileges drew no PodSecurity warning in the dry run:\n%s%s", res.stdout, res.stderr)
	} else {
		t.Logf("warned as it should be: %s", strings.TrimSpace(res.stderr))
	}

	// A Pod needs its ServiceAccount to exist (no controller manager makes "default").
	for _, sa := range f.ofKind("ServiceAccount") {
		mustKubectl(t, yamlOf(t, sa), "apply", "-f", "-")
	}
	tmpl, _, _ := unstructured.NestedMap(escalating.Object, "spec", "template")
	pod := &unstructured.Unstructured{Object: tmpl}
	pod.SetAPIVersion("v1")
	pod.SetKind("Pod")
	pod.SetName("escalating-probe")
	pod.SetNamespace(escalating.GetNamespace())
	res = kubectl(t, yamlOf(t, pod), "apply", "--dry-run=server", "-f", "-")
	if res.err == nil || !strings.Contains(res.stderr, "violates PodSecurity") || !strings.Contains(res.stderr, violation) {
		t.Errorf("a Pod that may escalate its privileges in %s passed the server-side dry run or failed otherwise (err %v):\n%s%s", pod.GetNamespace(), res.err, res.stdout, res.stderr)
	} else {
		t.Logf("refused as it should be: %s", strings.TrimSpace(res.stderr))
	}
}
