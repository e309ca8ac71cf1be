package e2e

import (
	"strings"
	"testing"

	"github.com/msp-dev/msp/e2e/framework"
)

// admissionCase is one manifest that kubectl apply must reject, with the field and
// message the rejection must name.
type admissionCase struct {
	name     string
	manifest string
	// update, when set, is applied first (and must be accepted); manifest then updates it.
	update   string
	wantText []string
}

func runAdmissionCases(t *testing.T, env *framework.Env, kubeconfig, resource string, cases []admissionCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objName := framework.UniqueName(t)
			if tc.update != "" {
				env.MustKubectl(t, kubeconfig, strings.ReplaceAll(tc.update, "NAME", objName), "apply", "-f", "-")
			}
			res := env.Kubectl(t, kubeconfig, strings.ReplaceAll(tc.manifest, "NAME", objName), "apply", "-f", "-")
			if res.Err == nil {
				t.Fatalf("kubectl apply was accepted, want a rejection; stdout: %s", res.Stdout)
			}
			for _, want := range tc.wantText {
				if !strings.Contains(res.Stderr, want) {
					t.Errorf("rejection does not mention %q:\n%s", want, res.Stderr)
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
	})
}

const validDatabase = `
apiVersion: postgres.msp.dev/v1alpha1
kind: PostgresDatabase
metadata: {name: NAME}
spec:
  placement:
    regions: [eu-de, eu-fr]
    countries: [DE, FR]
`

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
			wantText: []string{"spec.databaseName", "must not start with pg_"},
		},
		{
			name:     "owner postgres",
			manifest: validDatabase + "  owner: postgres\n",
			wantText: []string{"spec.owner", "must not be postgres"},
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
			wantText: []string{"databaseName cannot be changed once set"},
		},
	})

	// Nothing above disturbed the valid database.
	out := env.MustKubectl(t, kubeconfig, "", "get", "postgresdatabase", "control", "-o", "jsonpath={.spec.extensions}")
	if !strings.Contains(out, "pgcrypto") {
		t.Errorf("the valid database changed: extensions = %q", out)
	}
}
