package e2e

import (
	"strings"
	"testing"

	"github.com/msp-dev/msp/e2e/framework"
)

// admissionCase is one manifest that kubectl apply must reject, with the field and
// message the rejection must name; or, with accept, one it must accept.
type admissionCase struct {
	name     string
	manifest string
	// update, when set, is applied first (and must be accepted); manifest then updates it.
	update   string
	wantText []string
	// notText must not appear in the rejection.
	notText []string
	// accept says manifest must be accepted (and is deleted again at the end).
	accept bool
}

func runAdmissionCases(t *testing.T, env *framework.Env, kubeconfig, resource string, cases []admissionCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objName := framework.UniqueName(t)
			manifest := strings.ReplaceAll(tc.manifest, "NAME", objName)
			if tc.update != "" {
				env.MustKubectl(t, kubeconfig, strings.ReplaceAll(tc.update, "NAME", objName), "apply", "-f", "-")
			}
			if tc.accept {
				t.Cleanup(func() { env.Kubectl(t, kubeconfig, manifest, "delete", "-f", "-", "--ignore-not-found") })
				env.MustKubectl(t, kubeconfig, manifest, "apply", "-f", "-")
				return
			}
			res := env.Kubectl(t, kubeconfig, manifest, "apply", "-f", "-")
			if res.Err == nil {
				t.Fatalf("kubectl apply was accepted, want a rejection; stdout: %s", res.Stdout)
			}
			t.Logf("rejected: %s", strings.TrimSpace(res.Stderr))
			for _, want := range tc.wantText {
				if !strings.Contains(res.Stderr, want) {
					t.Errorf("rejection does not mention %q:\n%s", want, res.Stderr)
				}
			}
			for _, not := range tc.notText {
				if strings.Contains(res.Stderr, not) {
					t.Errorf("rejection mentions %q:\n%s", not, res.Stderr)
				}
			}
			// A rejected create leaves nothing behind.
			if tc.update == "" {
				got := env.Kubectl(t, kubeconfig, "", "get", resource, objName, "--ignore-not-found", "-o", "name")
				if strings.TrimSpace(got.Stdout) != "" {
					t.Errorf("a rejected object exists: %s", got.Stdout)
				}
			}
		})
	}
}

// nameOfLength is a unique object name of exactly n characters (n > 48).
func nameOfLength(t *testing.T, n int) string {
	base := framework.UniqueName(t) + "-"
	return base + strings.Repeat("x", n-len(base))
}

// notChecked is what kube-apiserver adds when a schema error (wrong type, missing
// required field, too long, too many, not an allowed value) kept it from running the
// CEL rules.
const notChecked = "some validation rules were not checked"

const validRuntime = `
apiVersion: platform.msp.dev/v1alpha1
kind: ServiceRuntime
metadata: {name: NAME}
spec:
  location: {region: eu-de, country: DE}
  capabilities: [{group: postgres.msp.dev, kind: PostgresDatabase}]
  capacity: {capabilities: "10"}
`

// ServiceRuntimes and runtime classes that break the schema or a CEL rule are rejected
// at admission with a message that names the field; valid ones are accepted.
func TestAdmissionRejectsBadRuntimes(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	kubeconfig := env.In("root:providers:postgres").Kubeconfig(t)

	// The control: a valid runtime is accepted, so the rejections below are about the input.
	control := strings.ReplaceAll(validRuntime, "NAME", framework.UniqueName(t))
	env.MustKubectl(t, kubeconfig, control, "apply", "-f", "-")
	t.Cleanup(func() { env.Kubectl(t, kubeconfig, control, "delete", "-f", "-") })

	runAdmissionCases(t, env, kubeconfig, "serviceruntimes", []admissionCase{
		{
			name:     "lower-case country",
			manifest: strings.Replace(validRuntime, "country: DE", "country: de", 1),
			wantText: []string{"spec.location.country", "^[A-Z]{2}$"},
		},
		{
			name:     "no region",
			manifest: strings.Replace(validRuntime, "region: eu-de, ", "", 1),
			wantText: []string{"spec.location.region", "Required value"},
		},
		{
			name:     "no capability kinds",
			manifest: strings.Replace(validRuntime, "capabilities: [{group: postgres.msp.dev, kind: PostgresDatabase}]", "capabilities: []", 1),
			wantText: []string{"spec.capabilities", "at least 1"},
		},
		{
			name:     "capacity that is not a quantity",
			manifest: strings.Replace(validRuntime, `capabilities: "10"`, `capabilities: "lots"`, 1),
			wantText: []string{"spec.capacity.capabilities"},
		},
		{
			name:     "unknown taint effect",
			manifest: validRuntime + "  taints: [{key: dedicated, effect: NoExecute}]\n",
			wantText: []string{"spec.taints[0].effect", "NoExecute"},
		},
		{
			name:     "runtime class changed",
			update:   validRuntime + "  runtimeClassName: small\n",
			manifest: validRuntime + "  runtimeClassName: large\n",
			wantText: []string{"runtimeClassName is immutable"},
		},
		{
			// Capabilities carry the runtime's name in a label value (at most 63).
			name:     "name longer than 63 characters",
			manifest: strings.ReplaceAll(validRuntime, "NAME", nameOfLength(t, 64)),
			wantText: []string{"a ServiceRuntime name must be at most 63 characters", "platform.msp.dev/runtime"},
		},
		{
			name:     "name with a dot",
			manifest: strings.ReplaceAll(validRuntime, "NAME", "NAME.eu"),
			wantText: []string{"a ServiceRuntime name must be a DNS label"},
		},
		{
			name:     "name of 63 characters",
			manifest: strings.ReplaceAll(validRuntime, "NAME", nameOfLength(t, 63)),
			accept:   true,
		},
	})

	runAdmissionCases(t, env, kubeconfig, "serviceruntimeclasses", []admissionCase{
		{
			name: "min above max",
			manifest: `
apiVersion: platform.msp.dev/v1alpha1
kind: ServiceRuntimeClass
metadata: {name: NAME}
spec:
  capabilities: [{group: postgres.msp.dev, kind: PostgresDatabase}]
  locations: [{region: eu-de, country: DE}]
  minRuntimes: 3
  maxRuntimes: 1
  driver: {name: local}
`,
			wantText: []string{"minRuntimes must not be greater than maxRuntimes"},
		},
		{
			name: "driver name with upper case",
			manifest: `
apiVersion: platform.msp.dev/v1alpha1
kind: ServiceRuntimeClass
metadata: {name: NAME}
spec:
  capabilities: [{group: postgres.msp.dev, kind: PostgresDatabase}]
  locations: [{region: eu-de}]
  maxRuntimes: 1
  driver: {name: Local}
`,
			wantText: []string{"spec.driver.name"},
		},
		{
			// The runtimes it orders are named after it plus "-" and 6 hex characters.
			name:     "class name longer than 56 characters",
			manifest: strings.ReplaceAll(validRuntimeClass, "NAME", nameOfLength(t, 57)),
			wantText: []string{"a ServiceRuntimeClass name must be at most 56 characters"},
		},
		{
			name:     "class name with a dot",
			manifest: strings.ReplaceAll(validRuntimeClass, "NAME", "NAME.eu"),
			wantText: []string{"a ServiceRuntimeClass name must be a DNS label"},
		},
		{
			name:     "class name of 56 characters",
			manifest: strings.ReplaceAll(validRuntimeClass, "NAME", nameOfLength(t, 56)),
			accept:   true,
		},
	})
}

// validRuntimeClass orders nothing by itself: minRuntimes is 0 and no coordinator
// serves the workspace the admission tests use.
const validRuntimeClass = `
apiVersion: platform.msp.dev/v1alpha1
kind: ServiceRuntimeClass
metadata: {name: NAME}
spec:
  capabilities: [{group: postgres.msp.dev, kind: PostgresDatabase}]
  locations: [{region: eu-de, country: DE}]
  maxRuntimes: 1
  driver: {name: local}
`

const validDatabase = `
apiVersion: postgres.msp.dev/v1alpha1
kind: PostgresDatabase
metadata: {name: NAME}
spec:
  placement:
    regions: [eu-de, eu-fr]
    countries: [DE, FR]
`

// noPlacementDatabase has no placement at all (the server defaults it to {}).
const noPlacementDatabase = `
apiVersion: postgres.msp.dev/v1alpha1
kind: PostgresDatabase
metadata: {name: NAME}
spec:
  size: 1Gi
`

const (
	databaseNameFixed = "databaseName is fixed when the PostgresDatabase is created"
	ownerFixed        = "owner is fixed when the PostgresDatabase is created"
	placementFixed    = "placement cannot change once the capability runs on a runtime"
)

// Capabilities that break the schema or a CEL rule are rejected at admission with a
// message that names the field; a valid one is accepted.
func TestAdmissionRejectsBadCapabilities(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	tenant := env.NewTenant(t)
	kubeconfig := tenant.Kubeconfig(t)

	env.MustKubectl(t, kubeconfig, strings.ReplaceAll(validDatabase, "NAME", "control")+"  extensions: [pgcrypto, citext]\n", "apply", "-f", "-")

	runAdmissionCases(t, env, kubeconfig, "postgresdatabases", []admissionCase{
		{
			name:     "database name with upper case and dash",
			manifest: validDatabase + "  databaseName: Bad-Name\n",
			wantText: []string{"spec.databaseName", "^[a-z_][a-z0-9_]*$"},
		},
		{
			name:     "reserved database name",
			manifest: validDatabase + "  databaseName: pg_stuff\n",
			wantText: []string{"spec.databaseName", "must not be postgres, template0, template1 or start with pg_"},
		},
		{
			name:     "database name postgres",
			manifest: validDatabase + "  databaseName: postgres\n",
			wantText: []string{"spec.databaseName", "must not be postgres, template0, template1 or start with pg_"},
		},
		{
			name:     "database name template1",
			manifest: validDatabase + "  databaseName: template1\n",
			wantText: []string{"spec.databaseName", "must not be postgres, template0, template1 or start with pg_"},
		},
		{
			name:     "owner postgres",
			manifest: validDatabase + "  owner: postgres\n",
			wantText: []string{"spec.owner", "must not be postgres"},
		},
		{
			name:     "owner public",
			manifest: validDatabase + "  owner: public\n",
			wantText: []string{"spec.owner", "must not be postgres, public, none, current_user, current_role, session_user or start with pg_"},
		},
		{
			name:     "owner current_user",
			manifest: validDatabase + "  owner: current_user\n",
			wantText: []string{"spec.owner", "must not be postgres, public, none"},
		},
		{
			name:     "owner pg_monitor",
			manifest: validDatabase + "  owner: pg_monitor\n",
			wantText: []string{"spec.owner", "start with pg_"},
		},
		{
			// The default owner, databaseName + "_owner", would not fit in 63.
			name:     "long database name without owner",
			manifest: validDatabase + "  databaseName: " + strings.Repeat("d", 58) + "\n",
			wantText: []string{"spec.databaseName", "longer than 57 characters", "set spec.owner"},
		},
		{
			name:     "negative storage",
			manifest: validDatabase + "  resources: {storage: -1Gi}\n",
			wantText: []string{"spec.resources", "must be greater than zero", "storage"},
		},
		{
			name:     "zero storage",
			manifest: validDatabase + "  resources: {storage: \"0\"}\n",
			wantText: []string{"spec.resources", "must be greater than zero", "storage"},
		},
		{
			name:     "negative integer",
			manifest: validDatabase + "  resources: {gpu: -1, storage: 1Gi}\n",
			wantText: []string{"spec.resources", "every quantity in resources must be greater than zero, and gpu is not"},
		},
		{
			name:     "zero integer",
			manifest: validDatabase + "  resources: {gpu: 0}\n",
			wantText: []string{"spec.resources", "must be greater than zero", "gpu"},
		},
		{
			name:     "resource that is not a quantity",
			manifest: validDatabase + "  resources: {storage: lots}\n",
			wantText: []string{"spec.resources.storage"},
			// The pattern says it; the CEL rule does not fail on it a second time.
			notText: []string{"evaluating rule", notChecked},
		},
		{
			name:     "more than 12 resources",
			manifest: validDatabase + "  resources: {r1: 1, r2: 1, r3: 1, r4: 1, r5: 1, r6: 1, r7: 1, r8: 1, r9: 1, r10: 1, r11: 1, r12: 1, r13: 1}\n",
			wantText: []string{"spec.resources", "12"},
		},
		{
			name:     "capabilities in resources",
			manifest: validDatabase + "  resources: {capabilities: 2}\n",
			wantText: []string{"spec.resources", "resources must not set capabilities"},
		},
		{
			// runtimeName goes into the label platform.msp.dev/runtime.
			name:     "runtime name longer than 63 characters",
			manifest: validDatabase + "  runtimeName: " + strings.Repeat("r", 64) + "\n",
			wantText: []string{"spec.runtimeName", "63"},
		},
		{
			name:     "runtime name with a dot",
			manifest: validDatabase + "  runtimeName: eu.de-1\n",
			wantText: []string{"spec.runtimeName", "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
		},
		{
			name:     "extension not allowed",
			manifest: validDatabase + "  extensions: [plpython3u]\n",
			wantText: []string{"spec.extensions[0]", "plpython3u", "supported values"},
		},
		{
			name:     "size too large",
			manifest: validDatabase + "  size: 2Ti\n",
			wantText: []string{"spec.size", "size must be between 16Mi and 1Ti"},
		},
		{
			name:     "size not a quantity",
			manifest: validDatabase + "  size: big\n",
			wantText: []string{"spec.size"},
			notText:  []string{"evaluating rule", notChecked},
		},
		{
			name:     "preferred region outside the allowed ones",
			manifest: validDatabase + "    preferredRegions: [us-east]\n",
			wantText: []string{"spec.placement", "every entry of preferredRegions must also be in regions"},
		},
		{
			name:     "lower-case country",
			manifest: strings.Replace(validDatabase, "countries: [DE, FR]", "countries: [de]", 1),
			wantText: []string{"spec.placement.countries[0]"},
		},
		{
			name:     "toleration with Exists and a value",
			manifest: validDatabase + "    tolerations: [{key: dedicated, operator: Exists, value: x}]\n",
			wantText: []string{"spec.placement.tolerations[0]", "value must be empty when operator is Exists"},
		},
		{
			name:     "unknown deletion policy",
			manifest: validDatabase + "  deletionPolicy: Keep\n",
			wantText: []string{"spec.deletionPolicy", "Keep"},
		},
		{
			name:     "runtime changed once set",
			update:   validDatabase + "  runtimeName: eu-de-1\n",
			manifest: validDatabase + "  runtimeName: eu-fr-1\n",
			wantText: []string{"runtimeName cannot be changed or removed once set"},
		},
		{
			name:     "runtime removed once set",
			update:   validDatabase + "  runtimeName: eu-de-1\n",
			manifest: validDatabase,
			wantText: []string{"runtimeName cannot be changed or removed once set"},
		},
		{
			name:     "database name changed",
			update:   validDatabase + "  databaseName: shop\n",
			manifest: validDatabase + "  databaseName: shop2\n",
			wantText: []string{"spec.databaseName", databaseNameFixed},
		},
		{
			// The default name is in use on the server; a new one would point the
			// connection Secret at a new, empty database.
			name:     "database name set after creation",
			update:   validDatabase,
			manifest: validDatabase + "  databaseName: shop\n",
			wantText: []string{"spec.databaseName", databaseNameFixed},
		},
		{
			name:     "database name removed",
			update:   validDatabase + "  databaseName: shop\n",
			manifest: validDatabase,
			wantText: []string{"spec.databaseName", databaseNameFixed},
		},
		{
			name:     "owner changed",
			update:   validDatabase + "  owner: shop_admin\n",
			manifest: validDatabase + "  owner: shop_admin2\n",
			wantText: []string{"spec.owner", ownerFixed},
		},
		{
			name:     "owner set after creation",
			update:   validDatabase,
			manifest: validDatabase + "  owner: shop_admin\n",
			wantText: []string{"spec.owner", ownerFixed},
		},
		{
			name:     "owner removed",
			update:   validDatabase + "  owner: shop_admin\n",
			manifest: validDatabase,
			wantText: []string{"spec.owner", ownerFixed},
		},
		{
			name:     "placement changed once assigned",
			update:   validDatabase + "  runtimeName: eu-de-1\n",
			manifest: strings.Replace(validDatabase, "regions: [eu-de, eu-fr]", "regions: [eu-de]", 1) + "  runtimeName: eu-de-1\n",
			wantText: []string{"spec.placement", placementFixed},
		},
		{
			name:     "placement removed once assigned",
			update:   validDatabase + "  runtimeName: eu-de-1\n",
			manifest: noPlacementDatabase + "  runtimeName: eu-de-1\n",
			wantText: []string{"spec.placement", placementFixed},
		},
		{
			name:     "placement added once assigned",
			update:   noPlacementDatabase + "  runtimeName: eu-de-1\n",
			manifest: validDatabase + "  runtimeName: eu-de-1\n",
			wantText: []string{"spec.placement", placementFixed},
		},
		{
			// A schema error other than a type, length, count, enum or required one
			// (here a pattern) leaves the CEL rules running: both are reported.
			name:     "pattern and CEL errors together",
			manifest: validDatabase + "  databaseName: Bad-Name\n  resources: {storage: -1Gi}\n",
			wantText: []string{"spec.databaseName", "must be greater than zero"},
			notText:  []string{notChecked},
		},
		{
			// kube-apiserver's own rule: after a type error it runs no CEL rule and
			// says so (apiextensions-apiserver's hasBlockingErr).
			name:     "type error",
			manifest: validDatabase + "  size: 5\n",
			wantText: []string{"spec.size", notChecked},
		},
	})

	// Nothing above disturbed the valid database.
	out := env.MustKubectl(t, kubeconfig, "", "get", "postgresdatabase", "control", "-o", "jsonpath={.spec.extensions}")
	if !strings.Contains(out, "pgcrypto") {
		t.Errorf("the valid database changed: extensions = %q", out)
	}
}

// What the rules above must not refuse: names and resources at their limits, and the
// updates a tenant and the scheduler make to a capability.
func TestAdmissionAcceptsValidCapabilities(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	tenant := env.NewTenant(t)
	kubeconfig := tenant.Kubeconfig(t)

	cases := []admissionCase{
		{
			name:     "names next to reserved ones",
			manifest: validDatabase + "  databaseName: postgres_app\n  owner: public_owner\n",
		},
		{
			name:     "database name of 57 characters without owner",
			manifest: validDatabase + "  databaseName: " + strings.Repeat("d", 57) + "\n",
		},
		{
			name:     "database name of 63 characters with owner",
			manifest: validDatabase + "  databaseName: " + strings.Repeat("d", 63) + "\n  owner: " + strings.Repeat("o", 63) + "\n",
		},
		{
			name:     "fixed names kept while other fields change",
			update:   validDatabase + "  databaseName: shop\n  owner: shop_admin\n",
			manifest: validDatabase + "  databaseName: shop\n  owner: shop_admin\n  extensions: [citext]\n  deletionPolicy: Orphan\n",
		},
		{
			name:     "default names kept while other fields change",
			update:   validDatabase,
			manifest: validDatabase + "  extensions: [citext]\n",
		},
		{
			name:     "resources as strings and integers",
			manifest: validDatabase + "  resources: {storage: 10Gi, gpu: 1, iops: \"500\", cpu: 250m}\n",
		},
		{
			name:     "runtime name and placement in the same create",
			manifest: validDatabase + "  runtimeName: " + strings.Repeat("r", 63) + "\n",
		},
		{
			name:     "placement changed before assignment",
			update:   validDatabase,
			manifest: strings.Replace(validDatabase, "regions: [eu-de, eu-fr]", "regions: [eu-de]", 1),
		},
		{
			// What the scheduler does: set runtimeName, leave placement as it is.
			name:     "runtime name set later, placement unchanged",
			update:   validDatabase,
			manifest: validDatabase + "  runtimeName: eu-de-1\n",
		},
		{
			name:     "runtime name set later without placement",
			update:   noPlacementDatabase,
			manifest: noPlacementDatabase + "  runtimeName: eu-de-1\n",
		},
		{
			// An empty placement is no placement (what a typed Go client sends).
			name:     "empty placement once assigned",
			update:   noPlacementDatabase + "  runtimeName: eu-de-1\n",
			manifest: noPlacementDatabase + "  runtimeName: eu-de-1\n  placement: {}\n",
		},
		{
			name:     "other fields change once assigned",
			update:   validDatabase + "  runtimeName: eu-de-1\n",
			manifest: validDatabase + "  runtimeName: eu-de-1\n  extensions: [citext]\n  deletionPolicy: Orphan\n",
		},
	}
	for i := range cases {
		cases[i].accept = true
	}
	runAdmissionCases(t, env, kubeconfig, "postgresdatabases", cases)
}

// kubectl explain shows each paragraph of a field's documentation as one text that it
// wraps to the terminal, not with the line breaks of the Go doc comment it came from.
func TestExplainShowsParagraphs(t *testing.T) {
	t.Parallel()
	env := framework.Current(t)
	kubeconfig := env.NewTenant(t).Kubeconfig(t)

	out := env.MustKubectl(t, kubeconfig, "", "explain", "postgresdatabase.spec.databaseName")
	_, desc, ok := strings.Cut(out, "DESCRIPTION:\n")
	if !ok {
		t.Fatalf("kubectl explain printed no description:\n%s", out)
	}
	var paragraphs [][]string
	para := []string(nil)
	for _, line := range strings.Split(desc, "\n") {
		if line = strings.TrimRight(line, " "); line == "" {
			if para != nil {
				paragraphs = append(paragraphs, para)
			}
			para = nil
			continue
		}
		para = append(para, line)
	}
	if len(paragraphs) != 2 {
		t.Fatalf("want the 2 paragraphs of databaseName's documentation, got %d:\n%s", len(paragraphs), out)
	}
	// kubectl fills each line up to its width; a line that ends early within a
	// paragraph is a line break of the doc comment.
	width := 0
	for _, p := range paragraphs {
		for _, line := range p {
			width = max(width, len(line))
		}
	}
	for _, p := range paragraphs {
		for i := 0; i+1 < len(p); i++ {
			next, _, _ := strings.Cut(strings.TrimSpace(p[i+1]), " ")
			if len(p[i])+1+len(next) <= width {
				t.Errorf("line %q ends early although %q fits after it:\n%s", p[i], next, out)
			}
		}
	}
}
