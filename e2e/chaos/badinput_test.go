//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	kretry "k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	platformv1alpha1 "github.com/msp-dev/msp/apis/platform/v1alpha1"
	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
	"github.com/msp-dev/msp/e2e/framework"
)

// The bad-input sweep of issue 19: malformed and hostile inputs from tenants against a
// live provider (its coordinator, a test-driver servicelet runtime, two bound tenants),
// each with what the tenant saw and a check that nothing else was disturbed.

// BadInputRow is one case of the sweep.
type BadInputRow struct {
	// Case is a short name; Input what the tenant did.
	Case, Input string
	// UserSaw is the refusal's message (trimmed) or the condition the tenant can read.
	UserSaw string
	// Disturbed lists anything else that changed and should not have.
	Disturbed []string
	// OK says the platform behaved as expected: a clear refusal or a clear condition,
	// and nothing else disturbed.
	OK bool
}

const (
	// badNamespace is where every capability of the sweep lives.
	badNamespace = "default"
	// badWait bounds a wait for a condition the platform should reach within seconds.
	badWait = 60 * time.Second
	// badSawLen is how much of a message a row keeps.
	badSawLen = 220
	// badDoomedRuntime is the runtime the sweep starts, fills and deletes at its end.
	badDoomedRuntime = "rt-doomed"
	// badKind is the kind's name as the test driver's logs spell it.
	badKind = "PostgresDatabase"
)

// badLongRuntime is a runtime name of exactly 63 characters (the limit), which tenant a
// may use but which does not exist.
var badLongRuntime = "rt-" + strings.Repeat("x", 60)

// badSweep is the state of one sweep.
type badSweep struct {
	t   *testing.T
	env *framework.Env
	p   *framework.Provider
	sl  *framework.Servicelet
	a   *framework.Workspace
	// ca and cb are the tenants' own identities (not the operator's): the provider's
	// admission webhook judges their writes as a tenant's. ka and kb are their
	// kubeconfigs for kubectl.
	ca, cb             client.Client
	ka, kb             string
	clusterA, clusterB string
	witnesses          []*badWitness
	target             *postgresv1alpha1.PostgresDatabase
	rows               []BadInputRow
}

// badWitness is a capability of tenant b that no case touches: what it looked like
// when the sweep began (or after the last case that was found to disturb it).
type badWitness struct {
	name, runtime, secret, secretRV, token string
	uid                                    types.UID
	generation                             int64
}

// BadInputSweep runs the bad-input cases against a live provider p, whose coordinator and
// the test-driver servicelet sl already run, with tenants a and b bound to it, and
// returns one row per case. It acts as the tenants' own users (tenant-acme is made the
// admin of a, tenant-globex of b), grants a the use of sl's runtime and of one runtime
// of 63 characters that does not exist (replacing a's grant), creates three witnesses in
// b and checks them after every case, and at its end starts a second runtime, places a
// capability of a there and deletes that runtime.
func BadInputSweep(t *testing.T, env *framework.Env, p *framework.Provider, sl *framework.Servicelet, a, b *framework.Workspace) []BadInputRow {
	t.Helper()
	s := &badSweep{t: t, env: env, p: p, sl: sl, a: a}
	s.ka = env.TenantAdmin(t, "tenant-acme", a)
	s.kb = env.TenantAdmin(t, "tenant-globex", b)
	s.ca, s.cb = badTenantClient(t, s.ka), badTenantClient(t, s.kb)
	s.clusterA, s.clusterB = a.ClusterName(t), b.ClusterName(t)
	p.Permit(t, a, sl.Runtime, badLongRuntime)
	s.waitAccess(s.ca, a.Path)
	s.waitAccess(s.cb, b.Path)
	s.makeWitnesses()
	s.makeTarget()

	s.schemaCases()
	s.nameCases()
	s.runtimeNameCases()
	s.immutableCases()
	s.collisionCases()
	s.schedulingCases()
	s.serviceletCases()
	s.secretCases()
	s.deletionCases()
	s.runtimeDeletedCases()
	return s.rows
}

// BadInputTable renders the rows as a Markdown table.
func BadInputTable(rows []BadInputRow) string {
	var b strings.Builder
	b.WriteString("| case | input | what the tenant saw | disturbed | ok |\n| --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		disturbed := "nothing"
		if len(r.Disturbed) > 0 {
			disturbed = strings.Join(r.Disturbed, "; ")
		}
		ok := "yes"
		if !r.OK {
			ok = "**no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", badCell(r.Case), badCell(r.Input), badCell(r.UserSaw), badCell(disturbed), ok)
	}
	return b.String()
}

// badCell makes s fit in one Markdown table cell.
func badCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// ---- the machinery -------------------------------------------------------------------

// badTenantClient is a client with the credential of kubeconfig.
func badTenantClient(t *testing.T, kubeconfig string) client.Client {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatalf("failed to read %s: %v", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	c, err := client.New(cfg, client.Options{Scheme: framework.Scheme})
	if err != nil {
		t.Fatalf("failed to make a client from %s: %v", kubeconfig, err)
	}
	return c
}

// waitAccess waits until the tenant's own user can list capabilities in its workspace
// (its admin binding has reached the authorizer).
func (s *badSweep) waitAccess(c client.Client, path string) {
	s.t.Helper()
	var last error
	if !badPoll(time.Minute, func(ctx context.Context) bool {
		last = c.List(ctx, &postgresv1alpha1.PostgresDatabaseList{}, client.InNamespace(badNamespace))
		return last == nil
	}) {
		s.t.Fatalf("the tenant cannot list its capabilities in %s: %v", path, last)
	}
}

// run runs one case and records its row: the case's own verdict, and the witnesses.
func (s *badSweep) run(name, input string, fn func() (saw string, ok bool, disturbed []string)) {
	start := time.Now()
	var (
		saw       string
		ok        bool
		disturbed []string
	)
	func() {
		defer func() {
			if r := recover(); r != nil {
				saw, ok = fmt.Sprintf("the case panicked: %v", r), false
			}
		}()
		saw, ok, disturbed = fn()
	}()
	disturbed = append(disturbed, s.witnessesDisturbed()...)
	row := BadInputRow{Case: name, Input: input, UserSaw: badTrim(saw), Disturbed: disturbed, OK: ok && len(disturbed) == 0}
	s.rows = append(s.rows, row)
	s.t.Logf("bad input %d, %s (%s): ok %v; saw: %s; disturbed: %v", len(s.rows), name, time.Since(start).Round(100*time.Millisecond), row.OK, row.UserSaw, disturbed)
}

// badPoll calls cond until it holds or timeout passes, backing off from 100ms to 1s.
func badPoll(timeout time.Duration, cond func(ctx context.Context) bool) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	interval := 100 * time.Millisecond
	for {
		if cond(ctx) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
		interval = min(interval*3/2, time.Second)
	}
}

// badTrim makes one line of msg, at most badSawLen characters.
func badTrim(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	if r := []rune(msg); len(r) > badSawLen {
		return string(r[:badSawLen]) + "…"
	}
	return msg
}

// badShorten replaces each long string in msg by a note of its length, so that a
// trimmed message keeps what it says about it.
func badShorten(msg string, longs ...string) string {
	for _, l := range longs {
		msg = strings.ReplaceAll(msg, l, fmt.Sprintf("<%d characters>", len(l)))
	}
	return msg
}

// badRefused judges an attempt that must be refused with a message holding every want.
func badRefused(err error, wants ...string) (string, bool) {
	if err == nil {
		return "accepted, want a refusal", false
	}
	msg := err.Error()
	return msg, badContainsAll(msg, wants...)
}

func badContainsAll(msg string, wants ...string) bool {
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			return false
		}
	}
	return true
}

func badDB(name string) *postgresv1alpha1.PostgresDatabase {
	return &postgresv1alpha1.PostgresDatabase{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: badNamespace}}
}

func badKey(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: badNamespace, Name: name}
}

func badGet(c client.Client, name string) (*postgresv1alpha1.PostgresDatabase, error) {
	db := &postgresv1alpha1.PostgresDatabase{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return db, c.Get(ctx, badKey(name), db)
}

func badSecret(c client.Client, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s, c.Get(ctx, badKey(name), s)
}

func badCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// badCond is a condition as the tenant reads it: "Ready=False Reason: message".
func badCond(db *postgresv1alpha1.PostgresDatabase, typ string) string {
	c := meta.FindStatusCondition(db.Status.Conditions, typ)
	if c == nil {
		return "no " + typ + " condition"
	}
	s := fmt.Sprintf("%s=%s %s", typ, c.Status, c.Reason)
	if c.Message != "" {
		s += ": " + c.Message
	}
	return s
}

// badReason is the reason of db's condition typ, or "none".
func badReason(db *postgresv1alpha1.PostgresDatabase, typ string) string {
	if c := meta.FindStatusCondition(db.Status.Conditions, typ); c != nil {
		return c.Reason
	}
	return "none"
}

// badConds is every condition of db, as the tenant reads them.
func badConds(db *postgresv1alpha1.PostgresDatabase) string {
	var out []string
	for _, typ := range []string{platformv1alpha1.ConditionScheduled, platformv1alpha1.ConditionReady, platformv1alpha1.ConditionSynced} {
		out = append(out, badCond(db, typ))
	}
	return strings.Join(out, "; ")
}

// waitCond waits until name's condition typ has status (and reason, when not empty) and
// returns the document and that condition as the tenant reads it; ok is false when it
// did not get there, and the text then says what was there last.
func (s *badSweep) waitCond(c client.Client, name, typ string, status metav1.ConditionStatus, reason string, timeout time.Duration) (*postgresv1alpha1.PostgresDatabase, string, bool) {
	var db *postgresv1alpha1.PostgresDatabase
	var last string
	ok := badPoll(timeout, func(context.Context) bool {
		got, err := badGet(c, name)
		if err != nil {
			last = err.Error()
			return false
		}
		db = got
		cond := meta.FindStatusCondition(got.Status.Conditions, typ)
		last = badConds(got)
		return cond != nil && cond.Status == status && (reason == "" || cond.Reason == reason)
	})
	if ok {
		return db, badCond(db, typ), true
	}
	return db, fmt.Sprintf("after %s: %s", timeout, last), false
}

// waitReady waits until name is Ready with its connection Secret, and returns both.
func (s *badSweep) waitReady(c client.Client, name string) (*postgresv1alpha1.PostgresDatabase, *corev1.Secret, string, bool) {
	db, saw, ok := s.waitCond(c, name, platformv1alpha1.ConditionReady, metav1.ConditionTrue, "", badWait)
	if !ok {
		return db, nil, saw, false
	}
	if db.Status.ConnectionSecretRef == nil {
		return db, nil, saw + "; but status.connectionSecretRef is empty", false
	}
	sec, err := badSecret(c, db.Status.ConnectionSecretRef.Name)
	if err != nil {
		return db, nil, saw + "; but its Secret: " + err.Error(), false
	}
	return db, sec, saw, true
}

// create creates db with c and waits until it is Ready with its Secret.
func (s *badSweep) createReady(c client.Client, db *postgresv1alpha1.PostgresDatabase) (*postgresv1alpha1.PostgresDatabase, *corev1.Secret, string, bool) {
	ctx, cancel := badCtx()
	defer cancel()
	if err := c.Create(ctx, db); err != nil {
		return nil, nil, "create refused: " + err.Error(), false
	}
	return s.waitReady(c, db.Name)
}

// calls counts the lines of the test driver's log (creates.log, deletes.log) that name
// the capability name of the workspace cluster.
func (s *badSweep) calls(log, cluster, name string) int {
	return badCalls(s.sl.StateDir, log, cluster, name)
}

// badCalls counts the lines of a test driver's log in stateDir that name the
// capability name of the workspace cluster.
func badCalls(stateDir, log, cluster, name string) int {
	raw, err := os.ReadFile(filepath.Join(stateDir, log))
	if err != nil {
		return 0
	}
	want := cluster + "_" + badKind + "_" + badNamespace + "_" + name
	n := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if line == want {
			n++
		}
	}
	return n
}

// thingGeneration is the spec generation the test driver last brought the thing of
// tenant a's capability name in line with (its state file), or -1 when there is none.
func (s *badSweep) thingGeneration(name string) int64 {
	key := s.clusterA + "_" + badKind + "_" + badNamespace + "_" + name
	raw, err := os.ReadFile(filepath.Join(s.sl.StateDir, "things", key+".json"))
	if err != nil {
		return -1
	}
	var th struct {
		Generation int64 `json:"generation"`
	}
	if json.Unmarshal(raw, &th) != nil {
		return -1
	}
	return th.Generation
}

// patch applies change to the latest version of tenant a's capability name as a merge
// patch (of the main resource, or of status), retrying a conflict.
func (s *badSweep) patch(c client.Client, name string, status bool, change func(*postgresv1alpha1.PostgresDatabase)) error {
	return kretry.RetryOnConflict(kretry.DefaultRetry, func() error {
		before, err := badGet(c, name)
		if err != nil {
			return err
		}
		after := before.DeepCopy()
		change(after)
		ctx, cancel := badCtx()
		defer cancel()
		if status {
			return c.Status().Patch(ctx, after, client.MergeFrom(before))
		}
		return c.Patch(ctx, after, client.MergeFrom(before))
	})
}

// ---- witnesses and the target --------------------------------------------------------

// makeWitnesses creates three capabilities in tenant b and waits until they are Ready.
func (s *badSweep) makeWitnesses() {
	s.t.Helper()
	w1 := badDB("witness-1")
	w2 := badDB("witness-2")
	w2.Spec.Extensions = []postgresv1alpha1.Extension{"citext"}
	w3 := badDB("witness-3")
	w3.Spec.DeletionPolicy = platformv1alpha1.DeletionPolicyOrphan
	for _, db := range []*postgresv1alpha1.PostgresDatabase{w1, w2, w3} {
		got, sec, saw, ok := s.createReady(s.cb, db)
		if !ok {
			s.t.Fatalf("witness %s: %s", db.Name, saw)
		}
		s.witnesses = append(s.witnesses, &badWitness{name: got.Name, runtime: got.Spec.RuntimeName, secret: sec.Name,
			secretRV: sec.ResourceVersion, token: string(sec.Data["token"]), uid: got.UID, generation: got.Generation})
	}
	// Whatever the servicelet writes right after Ready (its own status write brings the
	// capability back once) is done before the baseline is taken.
	time.Sleep(2 * time.Second)
	for _, w := range s.witnesses {
		sec, err := badSecret(s.cb, w.secret)
		if err != nil {
			s.t.Fatalf("witness %s's Secret: %v", w.name, err)
		}
		w.secretRV, w.token = sec.ResourceVersion, string(sec.Data["token"])
	}
}

// witnessesDisturbed reports what changed on the witnesses since the last look, and
// takes what it found as the new baseline (so a disturbance shows in one row).
func (s *badSweep) witnessesDisturbed() []string {
	var out []string
	for _, w := range s.witnesses {
		db, err := badGet(s.cb, w.name)
		if err != nil {
			out = append(out, fmt.Sprintf("witness %s (tenant b): %v", w.name, err))
			continue
		}
		if db.UID != w.uid {
			out = append(out, fmt.Sprintf("witness %s was recreated", w.name))
			w.uid = db.UID
		}
		if db.DeletionTimestamp != nil {
			out = append(out, fmt.Sprintf("witness %s is being deleted", w.name))
		}
		if db.Generation != w.generation {
			out = append(out, fmt.Sprintf("witness %s's spec changed (generation %d → %d)", w.name, w.generation, db.Generation))
			w.generation = db.Generation
		}
		if db.Spec.RuntimeName != w.runtime {
			out = append(out, fmt.Sprintf("witness %s moved from %s to %s", w.name, w.runtime, db.Spec.RuntimeName))
			w.runtime = db.Spec.RuntimeName
		}
		if !meta.IsStatusConditionTrue(db.Status.Conditions, platformv1alpha1.ConditionReady) {
			out = append(out, fmt.Sprintf("witness %s is not Ready: %s", w.name, badCond(db, platformv1alpha1.ConditionReady)))
		}
		sec, err := badSecret(s.cb, w.secret)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("witness %s's Secret %s: %v", w.name, w.secret, err))
		default:
			if sec.ResourceVersion != w.secretRV {
				out = append(out, fmt.Sprintf("witness %s's Secret was rewritten (resourceVersion %s → %s)", w.name, w.secretRV, sec.ResourceVersion))
				w.secretRV = sec.ResourceVersion
			}
			if t := string(sec.Data["token"]); t != w.token {
				out = append(out, fmt.Sprintf("witness %s's credentials changed", w.name))
				w.token = t
			}
		}
		if n := s.calls("creates.log", s.clusterB, w.name); n != 1 {
			out = append(out, fmt.Sprintf("witness %s was created %d times on the runtime", w.name, n))
		}
		if n := s.calls("deletes.log", s.clusterB, w.name); n != 0 {
			out = append(out, fmt.Sprintf("witness %s was deleted %d times on the runtime", w.name, n))
		}
	}
	return out
}

// makeTarget creates tenant a's capability that the immutable-field cases try to edit.
func (s *badSweep) makeTarget() {
	s.t.Helper()
	got, _, saw, ok := s.createReady(s.ca, badDB("target"))
	if !ok {
		s.t.Fatalf("target: %s", saw)
	}
	s.target = got
}

// targetDisturbed reports how the target differs from what it was: spec, runtime label,
// the servicelet's finalizer, readiness.
func (s *badSweep) targetDisturbed() []string {
	db, err := badGet(s.ca, "target")
	if err != nil {
		return []string{"target: " + err.Error()}
	}
	var out []string
	if !equality.Semantic.DeepEqual(db.Spec, s.target.Spec) {
		out = append(out, "target's spec changed")
	}
	if db.Labels[platformv1alpha1.LabelRuntime] != s.target.Labels[platformv1alpha1.LabelRuntime] {
		out = append(out, fmt.Sprintf("target's runtime label changed to %q", db.Labels[platformv1alpha1.LabelRuntime]))
	}
	if !badHas(db.Finalizers, platformv1alpha1.FinalizerServicelet) {
		out = append(out, "target lost the servicelet's finalizer")
	}
	if !meta.IsStatusConditionTrue(db.Status.Conditions, platformv1alpha1.ConditionReady) {
		out = append(out, "target is not Ready: "+badCond(db, platformv1alpha1.ConditionReady))
	}
	return out
}

func badHas(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// ---- schema violations (kubectl, as tenant a) ---------------------------------------

// badManifest is a PostgresDatabase manifest; spec is its spec block (YAML at two
// spaces), or "" for none.
func badManifest(name, spec string) string {
	return "apiVersion: postgres.msp.dev/v1alpha1\nkind: PostgresDatabase\nmetadata:\n  name: " + name + "\n  namespace: default\n" + spec
}

// kubectlRefused applies manifest with kubectl as tenant a; it must be refused with a
// message holding every want, and nothing named name may exist afterwards.
func (s *badSweep) kubectlRefused(name, manifest string, wants ...string) (string, bool, []string) {
	res := s.env.Kubectl(s.t, s.ka, manifest, "apply", "-f", "-")
	var disturbed []string
	if _, err := badGet(s.ca, name); err == nil {
		disturbed = append(disturbed, "a capability "+name+" exists")
	}
	if res.Err == nil {
		return "accepted, want a refusal: " + res.Stdout, false, disturbed
	}
	msg := strings.TrimSpace(res.Stderr)
	return msg, badContainsAll(msg, wants...), disturbed
}

func (s *badSweep) schemaCases() {
	type tc struct{ name, object, input, spec string }
	cases := []struct {
		tc
		wants []string
	}{
		{tc{"missing required field", "no-spec", "kubectl apply a PostgresDatabase without spec", ""}, []string{"spec", "Required value"}},
		{tc{"wrong type", "int-size", "kubectl apply spec.size: 5 (a number, not a quantity string)", "spec:\n  size: 5\n"}, []string{"spec.size", "must be of type string"}},
		{tc{"zero size", "zero-size", "kubectl apply spec.size: 0Gi", "spec:\n  size: 0Gi\n"}, []string{"spec.size"}},
		{tc{"size over the limit", "huge-size", "kubectl apply spec.size: 2Ti (limit 1Ti)", "spec:\n  size: 2Ti\n"}, []string{"size must be between 16Mi and 1Ti"}},
		{tc{"negative resource", "neg-storage", "kubectl apply spec.resources: {storage: -1Gi}", "spec:\n  resources: {storage: -1Gi}\n"}, []string{"spec.resources", "greater than zero"}},
		{tc{"zero resource", "zero-gpu", "kubectl apply spec.resources: {gpu: 0}", "spec:\n  resources: {gpu: 0}\n"}, []string{"spec.resources", "greater than zero", "gpu"}},
		{tc{"platform resource requested", "caps-resource", "kubectl apply spec.resources: {capabilities: 2}", "spec:\n  resources: {capabilities: 2}\n"}, []string{"resources must not set capabilities"}},
		{tc{"unknown placement field", "unknown-field", "kubectl apply spec.placement.datacenter: fra1 (no such field)", "spec:\n  placement: {datacenter: fra1}\n"}, []string{"unknown field", "datacenter"}},
		{tc{"lower-case country", "lower-country", "kubectl apply spec.placement.countries: [de]", "spec:\n  placement: {countries: [de]}\n"}, []string{"spec.placement.countries[0]"}},
		{tc{"preferred region not allowed", "pref-region", "kubectl apply placement regions [eu-de], preferredRegions [us-east]", "spec:\n  placement: {regions: [eu-de], preferredRegions: [us-east]}\n"}, []string{"every entry of preferredRegions must also be in regions"}},
		{tc{"extension not allowed", "bad-ext", "kubectl apply spec.extensions: [plpython3u]", "spec:\n  extensions: [plpython3u]\n"}, []string{"spec.extensions[0]", "plpython3u", "supported values"}},
		{tc{"reserved database name", "reserved-db", "kubectl apply spec.databaseName: postgres", "spec:\n  databaseName: postgres\n"}, []string{"spec.databaseName", "must not be postgres"}},
		{tc{"invalid deletionPolicy", "bad-deletion", "kubectl apply spec.deletionPolicy: Keep", "spec:\n  deletionPolicy: Keep\n"}, []string{"spec.deletionPolicy", "Keep"}},
		{tc{"invalid managementPolicy", "bad-management", "kubectl apply spec.managementPolicy: ReadOnly", "spec:\n  managementPolicy: ReadOnly\n"}, []string{"spec.managementPolicy", "ReadOnly"}},
		{tc{"runtimeName over the limit", "long-runtime", "kubectl apply spec.runtimeName of 64 characters (a label value: at most 63)", "spec:\n  runtimeName: " + badLongRuntime + "y\n"}, []string{"spec.runtimeName", "63"}},
	}
	for _, c := range cases {
		s.run(c.name, c.input, func() (string, bool, []string) {
			saw, ok, disturbed := s.kubectlRefused(c.object, badManifest(c.object, c.spec), c.wants...)
			return badShorten(saw, badLongRuntime+"y"), ok, disturbed
		})
	}
}

// ---- names ---------------------------------------------------------------------------

func (s *badSweep) nameCases() {
	long := "long-" + strings.Repeat("x", 248) // 253, the limit of a namespaced object's name
	tooLong := long + "x"
	s.run("name of 254 characters", "create a PostgresDatabase whose name has 254 characters (the limit is 253)", func() (string, bool, []string) {
		ctx, cancel := badCtx()
		defer cancel()
		saw, ok := badRefused(s.ca.Create(ctx, badDB(tooLong)), "253")
		return badShorten(saw, tooLong), ok, nil
	})
	s.run("name of 253 characters", "create a PostgresDatabase whose name has 253 characters, the limit", func() (string, bool, []string) {
		db, sec, saw, ok := s.createReady(s.ca, badDB(long))
		if !ok {
			return badShorten(saw, long), false, nil
		}
		ok = len(sec.Name) <= 253 && sec.Annotations[platformv1alpha1.AnnotationCapability] == long && s.calls("creates.log", s.clusterA, long) == 1
		shown := sec.Name
		if len(shown) > 40 {
			shown = shown[:24] + "…" + shown[len(shown)-12:]
		}
		return fmt.Sprintf("%s; Secret %s (%d characters: the name cut, a hash appended; the full name in its annotation), created once on %s", saw, shown, len(sec.Name), db.Spec.RuntimeName), ok, nil
	})
	for _, n := range []struct{ name, object, input string }{
		{"upper-case name", "Orders", "kubectl apply a PostgresDatabase named Orders"},
		{"unicode name", "bücher-db", "kubectl apply a PostgresDatabase named bücher-db"},
	} {
		s.run(n.name, n.input, func() (string, bool, []string) {
			return s.kubectlRefused(n.object, badManifest(n.object, "spec: {}\n"), "RFC 1123")
		})
	}
	note := "Grüße aus Köln — 東京 🚀 ünïcödé"
	s.run("unicode annotation value", "create a PostgresDatabase with annotation note: "+note, func() (string, bool, []string) {
		db := badDB("unicode-note")
		db.Annotations = map[string]string{"example.com/note": note}
		got, _, saw, ok := s.createReady(s.ca, db)
		if !ok {
			return saw, false, nil
		}
		if got.Annotations["example.com/note"] != note {
			return fmt.Sprintf("%s; but the annotation reads %q", saw, got.Annotations["example.com/note"]), false, nil
		}
		return saw + "; annotation kept as written", true, nil
	})
	s.run("annotation over 256 KiB", "create a PostgresDatabase with a 300 KiB annotation value", func() (string, bool, []string) {
		db := badDB("huge-note")
		db.Annotations = map[string]string{"example.com/blob": strings.Repeat("x", 300<<10)}
		ctx, cancel := badCtx()
		defer cancel()
		saw, ok := badRefused(s.ca.Create(ctx, db), "262144")
		return badShorten(saw, db.Annotations["example.com/blob"]), ok, nil
	})
}

// ---- spec.runtimeName ----------------------------------------------------------------

func (s *badSweep) runtimeNameCases() {
	s.run("runtimeName of 63 characters, no such runtime", "create with spec.runtimeName of 63 characters (the limit) that the tenant may use but that does not exist", func() (string, bool, []string) {
		db := badDB("long-runtime-ok")
		db.Spec.RuntimeName = badLongRuntime
		ctx, cancel := badCtx()
		defer cancel()
		if err := s.ca.Create(ctx, db); err != nil {
			return badShorten("create refused: "+err.Error(), badLongRuntime), false, nil
		}
		got, saw, ok := s.waitCond(s.ca, db.Name, platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeNotFound, badWait)
		ok = ok && got.Spec.RuntimeName == badLongRuntime && strings.Contains(saw, "does not exist")
		return badShorten(saw, badLongRuntime), ok, nil
	})
	s.run("runtimeName not permitted", "tenant b (no grant) creates with spec.runtimeName: "+s.sl.Runtime, func() (string, bool, []string) {
		db := badDB("not-permitted")
		db.Spec.RuntimeName = s.sl.Runtime
		ctx, cancel := badCtx()
		defer cancel()
		if err := s.cb.Create(ctx, db); err != nil {
			return "create refused: " + err.Error(), false, nil
		}
		_, saw, ok := s.waitCond(s.cb, db.Name, platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, platformv1alpha1.ReasonRuntimeNotPermitted, badWait)
		time.Sleep(2 * time.Second)
		if n := s.calls("creates.log", s.clusterB, db.Name); n != 0 {
			return fmt.Sprintf("%s; but it was created %d times on the runtime", saw, n), false, nil
		}
		return saw, ok && strings.Contains(saw, "ask the provider to grant"), nil
	})
	s.run("runtimeName permitted", "tenant a (granted "+s.sl.Runtime+") creates with spec.runtimeName: "+s.sl.Runtime, func() (string, bool, []string) {
		db := badDB("named-runtime")
		db.Spec.RuntimeName = s.sl.Runtime
		got, _, saw, ok := s.createReady(s.ca, db)
		return saw, ok && got.Spec.RuntimeName == s.sl.Runtime, nil
	})
}

// ---- edits of what is fixed (on tenant a's target) ----------------------------------

func (s *badSweep) immutableCases() {
	cases := []struct {
		name, input string
		status      bool
		change      func(*postgresv1alpha1.PostgresDatabase)
		wants       []string
	}{
		{"runtimeName changed", "merge-patch spec.runtimeName of an assigned capability to rt-other", false,
			func(db *postgresv1alpha1.PostgresDatabase) { db.Spec.RuntimeName = "rt-other" },
			[]string{"runtimeName cannot be changed or removed once set"}},
		{"runtimeName removed", "merge-patch spec.runtimeName: null on an assigned capability", false,
			func(db *postgresv1alpha1.PostgresDatabase) { db.Spec.RuntimeName = "" },
			[]string{"runtimeName cannot be changed or removed once set"}},
		{"placement changed once assigned", "merge-patch spec.placement.regions: [eu-de] on an assigned capability", false,
			func(db *postgresv1alpha1.PostgresDatabase) { db.Spec.Placement.Regions = []string{"eu-de"} },
			[]string{"spec.placement", "placement cannot change once the capability runs on a runtime"}},
		{"databaseName set after creation", "merge-patch spec.databaseName: shop on a capability created without one", false,
			func(db *postgresv1alpha1.PostgresDatabase) { db.Spec.DatabaseName = "shop" },
			[]string{"spec.databaseName", "databaseName is fixed when the PostgresDatabase is created"}},
		{"runtime label changed", "merge-patch the label " + platformv1alpha1.LabelRuntime + " to rt-other", false,
			func(db *postgresv1alpha1.PostgresDatabase) { db.Labels[platformv1alpha1.LabelRuntime] = "rt-other" },
			[]string{"admission webhook", "must not change"}},
		{"runtime label removed", "merge-patch the label " + platformv1alpha1.LabelRuntime + ": null", false,
			func(db *postgresv1alpha1.PostgresDatabase) { delete(db.Labels, platformv1alpha1.LabelRuntime) },
			[]string{"admission webhook", "must not be removed"}},
		{"servicelet finalizer removed", "merge-patch metadata.finalizers: null (removes " + platformv1alpha1.FinalizerServicelet + ")", false,
			func(db *postgresv1alpha1.PostgresDatabase) { db.Finalizers = nil },
			[]string{"admission webhook", "is removed by the runtime's servicelet"}},
		{"status written by the tenant", "merge-patch /status with Ready=False (forged)", true,
			func(db *postgresv1alpha1.PostgresDatabase) {
				meta.SetStatusCondition(&db.Status.Conditions, metav1.Condition{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "Forged", Message: "forged by the tenant"})
			},
			[]string{"admission webhook", "status is written by the platform"}},
	}
	for _, c := range cases {
		s.run(c.name, c.input, func() (string, bool, []string) {
			before, err := badGet(s.ca, "target")
			if err != nil {
				return "target: " + err.Error(), false, nil
			}
			after := before.DeepCopy()
			c.change(after)
			ctx, cancel := badCtx()
			defer cancel()
			if c.status {
				err = s.ca.Status().Patch(ctx, after, client.MergeFrom(before))
			} else {
				err = s.ca.Patch(ctx, after, client.MergeFrom(before))
			}
			saw, ok := badRefused(err, c.wants...)
			return saw, ok, s.targetDisturbed()
		})
	}
	s.run("status in a main-resource update", "update the whole object with a forged Ready=False in status (not through /status)", func() (string, bool, []string) {
		uerr := kretry.RetryOnConflict(kretry.DefaultRetry, func() error {
			db, gerr := badGet(s.ca, "target")
			if gerr != nil {
				return gerr
			}
			meta.SetStatusCondition(&db.Status.Conditions, metav1.Condition{Type: platformv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "Forged", Message: "forged by the tenant"})
			ctx, cancel := badCtx()
			defer cancel()
			return s.ca.Update(ctx, db)
		})
		if uerr != nil {
			saw, ok := badRefused(uerr, "status is written by the platform")
			return saw, ok, s.targetDisturbed()
		}
		db, gerr := badGet(s.ca, "target")
		if gerr != nil {
			return gerr.Error(), false, nil
		}
		saw := "accepted, status ignored: " + badCond(db, platformv1alpha1.ConditionReady)
		return saw, meta.IsStatusConditionTrue(db.Status.Conditions, platformv1alpha1.ConditionReady), s.targetDisturbed()
	})
	s.run("runtime label set at creation", "create a PostgresDatabase with the label "+platformv1alpha1.LabelRuntime+": "+s.sl.Runtime, func() (string, bool, []string) {
		db := badDB("self-labelled")
		db.Labels = map[string]string{platformv1alpha1.LabelRuntime: s.sl.Runtime}
		ctx, cancel := badCtx()
		defer cancel()
		saw, ok := badRefused(s.ca.Create(ctx, db), "admission webhook", "is written by the scheduler")
		var disturbed []string
		if _, err := badGet(s.ca, db.Name); err == nil {
			disturbed = append(disturbed, "the refused capability exists")
		}
		return saw, ok, disturbed
	})
}

// ---- collisions ----------------------------------------------------------------------

func (s *badSweep) collisionCases() {
	s.run("same name twice in one tenant", "create a second PostgresDatabase named target in tenant a", func() (string, bool, []string) {
		ctx, cancel := badCtx()
		defer cancel()
		err := s.ca.Create(ctx, badDB("target"))
		saw, ok := badRefused(err, "already exists")
		return saw, ok && apierrors.IsAlreadyExists(err), s.targetDisturbed()
	})
	s.run("same name in two tenants", "tenants a and b each create a PostgresDatabase named orders", func() (string, bool, []string) {
		_, sa, sawA, okA := s.createReady(s.ca, badDB("orders"))
		_, sb, sawB, okB := s.createReady(s.cb, badDB("orders"))
		if !okA || !okB {
			return "a: " + sawA + "; b: " + sawB, false, nil
		}
		na, nb := s.calls("creates.log", s.clusterA, "orders"), s.calls("creates.log", s.clusterB, "orders")
		distinct := string(sa.Data["token"]) != string(sb.Data["token"])
		return fmt.Sprintf("both %s; each created once on the runtime (a %d, b %d), credentials distinct: %v", sawA, na, nb, distinct), na == 1 && nb == 1 && distinct, nil
	})
	s.run("tenant's own Secret in the way", "create a Secret postgresdatabase-blocked of its own, then a PostgresDatabase blocked", func() (string, bool, []string) {
		mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "postgresdatabase-blocked", Namespace: badNamespace}, Data: map[string][]byte{"note": []byte("mine")}}
		ctx, cancel := badCtx()
		defer cancel()
		if err := s.ca.Create(ctx, mine); err != nil {
			return "the tenant's Secret: " + err.Error(), false, nil
		}
		if err := s.ca.Create(ctx, badDB("blocked")); err != nil {
			return "create refused: " + err.Error(), false, nil
		}
		_, saw, ok := s.waitCond(s.ca, "blocked", platformv1alpha1.ConditionSynced, metav1.ConditionFalse, platformv1alpha1.ReasonReconcileError, badWait)
		ok = ok && strings.Contains(saw, "is not this capability's connection Secret")
		var disturbed []string
		if got, err := badSecret(s.ca, mine.Name); err != nil || string(got.Data["note"]) != "mine" || len(got.Data) != 1 || got.Labels[platformv1alpha1.LabelRuntime] != "" {
			disturbed = append(disturbed, fmt.Sprintf("the tenant's own Secret was changed (%v)", err))
		}
		return saw, ok, disturbed
	})
	s.run("namespace that does not exist", "create a PostgresDatabase in namespace no-such-namespace", func() (string, bool, []string) {
		db := badDB("lost")
		db.Namespace = "no-such-namespace"
		ctx, cancel := badCtx()
		defer cancel()
		err := s.ca.Create(ctx, db)
		saw, ok := badRefused(err, "not found")
		return saw, ok && apierrors.IsNotFound(err), nil
	})
}

// ---- scheduling ----------------------------------------------------------------------

func (s *badSweep) schedulingCases() {
	s.run("unknown region", "create with spec.placement.regions: [mars-1]", func() (string, bool, []string) {
		db := badDB("on-mars")
		db.Spec.Placement.Regions = []string{"mars-1"}
		ctx, cancel := badCtx()
		defer cancel()
		if err := s.ca.Create(ctx, db); err != nil {
			return "create refused: " + err.Error(), false, nil
		}
		_, saw, ok := s.waitCond(s.ca, db.Name, platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, badWait)
		return saw, ok && badContainsAll(saw, "region not allowed", "this provider offers regions"), nil
	})
	s.run("resource not offered", "create with spec.resources: {gpu: 1} (no runtime lists gpu)", func() (string, bool, []string) {
		db := badDB("wants-gpu")
		db.Spec.Resources = corev1.ResourceList{"gpu": resource.MustParse("1")}
		ctx, cancel := badCtx()
		defer cancel()
		if err := s.ca.Create(ctx, db); err != nil {
			return "create refused: " + err.Error(), false, nil
		}
		_, saw, ok := s.waitCond(s.ca, db.Name, platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, badWait)
		return saw, ok && strings.Contains(saw, "resource not offered"), nil
	})
	s.run("empty regions list vs no placement", "kubectl apply placement: {regions: []}, and another with no placement", func() (string, bool, []string) {
		res := s.env.Kubectl(s.t, s.ka, badManifest("regions-empty", "spec:\n  placement: {regions: []}\n"), "apply", "-f", "-")
		if res.Err != nil {
			return "regions: [] refused: " + res.Stderr, false, nil
		}
		_, _, sawEmpty, okEmpty := s.waitReady(s.ca, "regions-empty")
		_, _, sawNil, okNil := s.createReady(s.ca, badDB("regions-nil"))
		return fmt.Sprintf("regions []: %s; no placement: %s", sawEmpty, sawNil), okEmpty && okNil, nil
	})
}

// ---- what the servicelet does with what it is given -----------------------------------

func (s *badSweep) serviceletCases() {
	s.run("ObserveOnly of something missing", "create with spec.managementPolicy: ObserveOnly for a database that does not exist", func() (string, bool, []string) {
		db := badDB("observe-missing")
		db.Spec.ManagementPolicy = platformv1alpha1.ManagementPolicyObserveOnly
		ctx, cancel := badCtx()
		defer cancel()
		if err := s.ca.Create(ctx, db); err != nil {
			return "create refused: " + err.Error(), false, nil
		}
		_, saw, ok := s.waitCond(s.ca, db.Name, platformv1alpha1.ConditionReady, metav1.ConditionFalse, platformv1alpha1.ReasonUnavailable, badWait)
		if n := s.calls("creates.log", s.clusterA, db.Name); n != 0 {
			return fmt.Sprintf("%s; but it was created %d times", saw, n), false, nil
		}
		return saw, ok && strings.Contains(saw, "ObserveOnly"), nil
	})
	s.run("pause annotation typo", `create with annotation `+platformv1alpha1.AnnotationPaused+`: "yes"`, func() (string, bool, []string) {
		db := badDB("pause-typo")
		db.Annotations = map[string]string{platformv1alpha1.AnnotationPaused: "yes"}
		got, _, saw, ok := s.createReady(s.ca, db)
		if !ok {
			return saw, false, nil
		}
		synced := badCond(got, platformv1alpha1.ConditionSynced)
		return saw + "; " + synced, strings.Contains(synced, `only "true" pauses`), nil
	})
	s.run("pause, change, unpause", "annotate paused=true, add extension citext (a spec change), wait, remove the annotation", func() (string, bool, []string) {
		name := "pausable"
		_, _, saw, ok := s.createReady(s.ca, badDB(name))
		if !ok {
			return saw, false, nil
		}
		pausedSaw, ok := s.pause(name)
		if !ok {
			return pausedSaw, false, nil
		}
		applied := s.thingGeneration(name)
		if err := s.patch(s.ca, name, false, func(db *postgresv1alpha1.PostgresDatabase) {
			db.Spec.Extensions = []postgresv1alpha1.Extension{"citext"}
		}); err != nil {
			return "spec change refused: " + err.Error(), false, nil
		}
		time.Sleep(4 * time.Second) // an unpaused capability is updated within a second
		got, err := badGet(s.ca, name)
		if err != nil {
			return err.Error(), false, nil
		}
		during := s.thingGeneration(name)
		stillPaused := strings.Contains(badCond(got, platformv1alpha1.ConditionSynced), platformv1alpha1.ReasonReconcilePaused)
		if err := s.patch(s.ca, name, false, func(db *postgresv1alpha1.PostgresDatabase) {
			delete(db.Annotations, platformv1alpha1.AnnotationPaused)
		}); err != nil {
			return "unpause refused: " + err.Error(), false, nil
		}
		var last string
		done := badPoll(badWait, func(context.Context) bool {
			db, err := badGet(s.ca, name)
			if err != nil {
				last = err.Error()
				return false
			}
			last = badConds(db)
			return meta.IsStatusConditionTrue(db.Status.Conditions, platformv1alpha1.ConditionSynced) &&
				meta.IsStatusConditionTrue(db.Status.Conditions, platformv1alpha1.ConditionReady) && s.thingGeneration(name) == db.Generation
		})
		msg := fmt.Sprintf("paused: %s; spec generation %d not applied while paused (runtime at %d); after unpause: ", pausedSaw, got.Generation, during)
		if !done {
			return msg + "not applied within " + badWait.String() + ": " + last, false, nil
		}
		return msg + fmt.Sprintf("applied (runtime at %d)", s.thingGeneration(name)), stillPaused && during == applied && during < got.Generation, nil
	})
	s.run("valid spec change", "merge-patch extensions [citext, pgcrypto] and size 2Gi on a Ready capability", func() (string, bool, []string) {
		name := "grows"
		_, _, saw, ok := s.createReady(s.ca, badDB(name))
		if !ok {
			return saw, false, nil
		}
		if err := s.patch(s.ca, name, false, func(db *postgresv1alpha1.PostgresDatabase) {
			db.Spec.Extensions = []postgresv1alpha1.Extension{"citext", "pgcrypto"}
			db.Spec.Size = "2Gi"
		}); err != nil {
			return "refused: " + err.Error(), false, nil
		}
		var got *postgresv1alpha1.PostgresDatabase
		done := badPoll(badWait, func(context.Context) bool {
			db, err := badGet(s.ca, name)
			if err != nil {
				return false
			}
			got = db
			return db.Status.ObservedGeneration == db.Generation && meta.IsStatusConditionTrue(db.Status.Conditions, platformv1alpha1.ConditionSynced) &&
				s.thingGeneration(name) == db.Generation
		})
		if got == nil {
			return "the tenant cannot read grows", false, nil
		}
		return fmt.Sprintf("accepted; generation %d, observedGeneration %d, runtime at %d; %s", got.Generation, got.Status.ObservedGeneration, s.thingGeneration(name), badCond(got, platformv1alpha1.ConditionSynced)), done, nil
	})
	s.run("rotate-credentials annotation", "annotate "+platformv1alpha1.AnnotationRotateCredentials+"=r1", func() (string, bool, []string) {
		name := "rotate-me"
		_, sec, saw, ok := s.createReady(s.ca, badDB(name))
		if !ok {
			return saw, false, nil
		}
		old := string(sec.Data["token"])
		if err := s.patch(s.ca, name, false, func(db *postgresv1alpha1.PostgresDatabase) {
			db.Annotations = map[string]string{platformv1alpha1.AnnotationRotateCredentials: "r1"}
		}); err != nil {
			return "refused: " + err.Error(), false, nil
		}
		var last string
		done := badPoll(badWait, func(context.Context) bool {
			db, err := badGet(s.ca, name)
			if err != nil || db.Status.Credentials == nil {
				return false
			}
			sec, err := badSecret(s.ca, sec.Name)
			if err != nil {
				return false
			}
			last = fmt.Sprintf("status.credentials.rotationToken %q, rotatedAt %s", db.Status.Credentials.RotationToken, db.Status.Credentials.RotatedAt)
			return db.Status.Credentials.RotationToken == "r1" && string(sec.Data["token"]) != old
		})
		if !done {
			return "not rotated within " + badWait.String() + ": " + last, false, nil
		}
		return "new credentials in the Secret; " + last, true, nil
	})
}

// ---- the connection Secret -------------------------------------------------------------

func (s *badSweep) secretCases() {
	s.run("connection Secret deleted", "kubectl delete the connection Secret of a Ready capability", func() (string, bool, []string) {
		_, sec, saw, ok := s.createReady(s.ca, badDB("secret-gone"))
		if !ok {
			return saw, false, nil
		}
		res := s.env.Kubectl(s.t, s.ka, "", "delete", "secret", sec.Name, "-n", badNamespace)
		if res.Err != nil {
			return "delete refused: " + res.Stderr, false, nil
		}
		start := time.Now()
		var back *corev1.Secret
		done := badPoll(badWait, func(context.Context) bool {
			got, err := badSecret(s.ca, sec.Name)
			back = got
			return err == nil && got.UID != sec.UID && len(got.Data["token"]) > 0
		})
		if !done {
			return "not restored within " + badWait.String(), false, nil
		}
		same := string(back.Data["token"]) == string(sec.Data["token"])
		return fmt.Sprintf("restored after %s with the same credentials: %v", time.Since(start).Round(100*time.Millisecond), same), same, nil
	})
	s.run("connection Secret token edited", "edit the Secret's token to guessed", func() (string, bool, []string) {
		name := "secret-token"
		_, sec, saw, ok := s.createReady(s.ca, badDB(name))
		if !ok {
			return saw, false, nil
		}
		old := string(sec.Data["token"])
		if err := s.editSecret(sec.Name, func(sec *corev1.Secret) { sec.Data["token"] = []byte("guessed") }); err != nil {
			return "edit refused: " + err.Error(), false, nil
		}
		done := badPoll(badWait, func(context.Context) bool {
			got, err := badSecret(s.ca, sec.Name)
			return err == nil && string(got.Data["token"]) != "guessed" && string(got.Data["token"]) != old && len(got.Data["token"]) > 0
		})
		if !done {
			return "the edited token was not replaced within " + badWait.String(), false, nil
		}
		ev := s.event(name, platformv1alpha1.ReasonCredentialsRotated)
		if ev == nil {
			return "new credentials, but no CredentialsRotated event", false, nil
		}
		return fmt.Sprintf("new credentials; event %s %s: %s", ev.Type, ev.Reason, ev.Message), ev.Type == corev1.EventTypeWarning, nil
	})
	s.run("connection Secret endpoint edited", "edit the Secret's endpoint to test://elsewhere", func() (string, bool, []string) {
		_, sec, saw, ok := s.createReady(s.ca, badDB("secret-endpoint"))
		if !ok {
			return saw, false, nil
		}
		if err := s.editSecret(sec.Name, func(sec *corev1.Secret) { sec.Data["endpoint"] = []byte("test://elsewhere") }); err != nil {
			return "edit refused: " + err.Error(), false, nil
		}
		done := badPoll(badWait, func(context.Context) bool {
			got, err := badSecret(s.ca, sec.Name)
			return err == nil && string(got.Data["endpoint"]) == string(sec.Data["endpoint"])
		})
		got, err := badSecret(s.ca, sec.Name)
		if !done || err != nil {
			return fmt.Sprintf("not restored within %s (%v)", badWait, err), false, nil
		}
		same := string(got.Data["token"]) == string(sec.Data["token"])
		return fmt.Sprintf("endpoint rewritten to %s, credentials kept: %v", got.Data["endpoint"], same), same, nil
	})
	s.run("connection Secret's runtime label removed", "remove the label "+platformv1alpha1.LabelRuntime+" from the connection Secret, then delete the Secret", func() (string, bool, []string) {
		name := "secret-unlabelled"
		_, sec, saw, ok := s.createReady(s.ca, badDB(name))
		if !ok {
			return saw, false, nil
		}
		if err := s.editSecret(sec.Name, func(sec *corev1.Secret) { delete(sec.Labels, platformv1alpha1.LabelRuntime) }); err != nil {
			return "edit refused: " + err.Error(), false, nil
		}
		// The Secret is now the tenant's own as far as the platform is concerned: it must
		// say that it cannot write it, not take it over.
		_, unlabelled, okMsg := s.waitCond(s.ca, name, platformv1alpha1.ConditionSynced, metav1.ConditionFalse, platformv1alpha1.ReasonReconcileError, badWait)
		if !okMsg {
			got, _ := badSecret(s.ca, sec.Name)
			relabelled := got != nil && got.Labels[platformv1alpha1.LabelRuntime] != ""
			return fmt.Sprintf("no Synced=False; %s; Secret labelled again: %v", unlabelled, relabelled), false, nil
		}
		res := s.env.Kubectl(s.t, s.ka, "", "delete", "secret", sec.Name, "-n", badNamespace)
		if res.Err != nil {
			return unlabelled + "; delete refused: " + res.Stderr, false, nil
		}
		_, after, okBack := s.waitCond(s.ca, name, platformv1alpha1.ConditionSynced, metav1.ConditionTrue, "", 2*badWait)
		back, err := badSecret(s.ca, sec.Name)
		restored := err == nil && back.Labels[platformv1alpha1.LabelRuntime] == s.sl.Runtime && string(back.Data["token"]) == string(sec.Data["token"])
		// Keep the whole verdict in the row: the message's head, then what followed.
		head, _, _ := strings.Cut(unlabelled, " (the platform")
		return fmt.Sprintf("after deleting it: %s, Secret restored with the same credentials: %v. Before, unlabelled: %s", after, restored, head),
			okMsg && strings.Contains(unlabelled, "cannot be written") && okBack && restored, nil
	})
}

// editSecret applies change to tenant a's Secret name with an update, as kubectl edit
// would.
func (s *badSweep) editSecret(name string, change func(*corev1.Secret)) error {
	return kretry.RetryOnConflict(kretry.DefaultRetry, func() error {
		sec, err := badSecret(s.ca, name)
		if err != nil {
			return err
		}
		if sec.Data == nil {
			sec.Data = map[string][]byte{}
		}
		change(sec)
		ctx, cancel := badCtx()
		defer cancel()
		return s.ca.Update(ctx, sec)
	})
}

// event returns the latest event of reason about tenant a's capability object.
func (s *badSweep) event(object, reason string) *corev1.Event {
	var found *corev1.Event
	badPoll(10*time.Second, func(ctx context.Context) bool {
		list := &corev1.EventList{}
		if err := s.ca.List(ctx, list, client.InNamespace(badNamespace)); err != nil {
			return false
		}
		for i := range list.Items {
			e := &list.Items[i]
			if e.InvolvedObject.Name == object && e.Reason == reason {
				found = e
			}
		}
		return found != nil
	})
	return found
}

// pause annotates tenant a's capability name paused=true and waits until its servicelet
// says so; it returns what was seen (the condition, or what stood instead).
func (s *badSweep) pause(name string) (string, bool) {
	if err := s.patch(s.ca, name, false, func(db *postgresv1alpha1.PostgresDatabase) {
		db.Annotations = map[string]string{platformv1alpha1.AnnotationPaused: "true"}
	}); err != nil {
		return "pause refused: " + err.Error(), false
	}
	_, saw, ok := s.waitCond(s.ca, name, platformv1alpha1.ConditionSynced, metav1.ConditionFalse, platformv1alpha1.ReasonReconcilePaused, badWait)
	if !ok {
		return "paused: " + saw, false
	}
	return saw, true
}

// ---- deletion --------------------------------------------------------------------------

func (s *badSweep) deletionCases() {
	s.run("delete while paused, then unpause", "annotate paused=true, delete, wait, remove the annotation", func() (string, bool, []string) {
		name := "paused-delete"
		_, sec, saw, ok := s.createReady(s.ca, badDB(name))
		if !ok {
			return saw, false, nil
		}
		if saw, ok := s.pause(name); !ok {
			return saw, false, nil
		}
		ctx, cancel := badCtx()
		defer cancel()
		if err := s.ca.Delete(ctx, badDB(name)); err != nil {
			return "delete refused: " + err.Error(), false, nil
		}
		time.Sleep(4 * time.Second)
		db, err := badGet(s.ca, name)
		if err != nil {
			return "deleted although paused: " + err.Error(), false, nil
		}
		waiting := fmt.Sprintf("while paused: still there (deletionTimestamp set: %v), Synced reason %s, deleted on the runtime %d times", db.DeletionTimestamp != nil, badReason(db, platformv1alpha1.ConditionSynced), s.calls("deletes.log", s.clusterA, name))
		heldOK := db.DeletionTimestamp != nil && s.calls("deletes.log", s.clusterA, name) == 0
		if err := s.patch(s.ca, name, false, func(db *postgresv1alpha1.PostgresDatabase) {
			delete(db.Annotations, platformv1alpha1.AnnotationPaused)
		}); err != nil {
			return waiting + "; unpause refused: " + err.Error(), false, nil
		}
		gone := badPoll(badWait, func(context.Context) bool {
			_, err := badGet(s.ca, name)
			return apierrors.IsNotFound(err)
		})
		_, serr := badSecret(s.ca, sec.Name)
		n := s.calls("deletes.log", s.clusterA, name)
		return fmt.Sprintf("%s; after unpause: gone %v, deleted on the runtime %d times, Secret gone %v", waiting, gone, n, apierrors.IsNotFound(serr)),
			heldOK && gone && n >= 1 && apierrors.IsNotFound(serr), nil
	})
	s.run("delete twice", "delete a Ready capability twice in a row, then once more after it is gone", func() (string, bool, []string) {
		name := "twice"
		_, sec, saw, ok := s.createReady(s.ca, badDB(name))
		if !ok {
			return saw, false, nil
		}
		ctx, cancel := badCtx()
		defer cancel()
		first := s.ca.Delete(ctx, badDB(name))
		second := s.ca.Delete(ctx, badDB(name))
		gone := badPoll(badWait, func(context.Context) bool {
			_, err := badGet(s.ca, name)
			return apierrors.IsNotFound(err)
		})
		ctx3, cancel3 := badCtx()
		defer cancel3()
		third := s.ca.Delete(ctx3, badDB(name))
		_, serr := badSecret(s.ca, sec.Name)
		n := s.calls("deletes.log", s.clusterA, name)
		describe := func(err error) string {
			if err == nil {
				return "accepted"
			}
			return err.Error()
		}
		ok = first == nil && (second == nil || apierrors.IsNotFound(second)) && gone && apierrors.IsNotFound(third) && n >= 1 && apierrors.IsNotFound(serr)
		return fmt.Sprintf("first %s; second %s; gone %v, deleted on the runtime %d times, Secret gone %v; third: %s", describe(first), describe(second), gone, n, apierrors.IsNotFound(serr), describe(third)), ok, nil
	})
}

// ---- a runtime deleted under its capabilities ------------------------------------------

func (s *badSweep) runtimeDeletedCases() {
	region := "eu-doomed"
	var (
		doomed     *framework.Servicelet
		doomedConn string // doomed's connection Secret
	)
	s.run("runtime deleted while it hosts a capability", "the provider deletes the ServiceRuntime "+badDoomedRuntime+" that hosts tenant a's Ready capability doomed; what the provider and the tenant read, and where a new capability for its region goes", func() (string, bool, []string) {
		doomed = s.p.StartServicelet(s.t, framework.ServiceletSpec{Runtime: badDoomedRuntime, Region: region, Country: "FR", Capabilities: 5})
		db := badDB("doomed")
		db.Spec.Placement.Regions = []string{region}
		got, conn, saw, ok := s.createReady(s.ca, db)
		if !ok {
			doomed = nil
			return "never Ready on " + badDoomedRuntime + ": " + saw, false, nil
		}
		doomedConn = conn.Name
		pc := s.p.Client(s.t)
		ctx, cancel := badCtx()
		defer cancel()
		rt := &platformv1alpha1.ServiceRuntime{}
		if err := pc.Get(ctx, client.ObjectKey{Name: badDoomedRuntime}, rt); err != nil {
			return "the runtime: " + err.Error(), false, nil
		}
		if err := pc.Delete(ctx, rt); err != nil {
			return "deleting the runtime: " + err.Error(), false, nil
		}
		// The provider: the twin is held, and says why.
		var held string
		heldOK := badPoll(badWait, func(ctx context.Context) bool {
			twin := &platformv1alpha1.ServiceRuntime{}
			if err := pc.Get(ctx, client.ObjectKey{Name: badDoomedRuntime}, twin); err != nil {
				held = "the twin: " + err.Error()
				return false
			}
			c := meta.FindStatusCondition(twin.Status.Conditions, platformv1alpha1.ConditionRemoval)
			held = fmt.Sprintf("deletionTimestamp set %v, no Removal condition", twin.DeletionTimestamp != nil)
			if c != nil {
				held = fmt.Sprintf("deletionTimestamp set %v, Removal=%s %s: %s", twin.DeletionTimestamp != nil, c.Status, c.Reason, c.Message)
			}
			return twin.DeletionTimestamp != nil && c != nil && c.Status == metav1.ConditionTrue &&
				c.Reason == platformv1alpha1.ReasonHostsCapabilities && strings.Contains(c.Message, "hosts 1 capability")
		})
		// The tenant: one Warning event, and its capability keeps running.
		told := s.eventWithin(got.Name, platformv1alpha1.ReasonRuntimeRemoval, badWait)
		// A new capability for the region waits: nothing new goes onto a runtime being removed.
		next := badDB("doomed-next")
		next.Spec.Placement.Regions = []string{region}
		nctx, ncancel := badCtx()
		defer ncancel()
		var waits string
		waitsOK := false
		if err := s.ca.Create(nctx, next); err != nil {
			waits = "create refused: " + err.Error()
		} else {
			var w *postgresv1alpha1.PostgresDatabase
			w, waits, waitsOK = s.waitCond(s.ca, next.Name, platformv1alpha1.ConditionScheduled, metav1.ConditionFalse, platformv1alpha1.ReasonUnschedulable, badWait)
			waitsOK = waitsOK && strings.Contains(waits, "runtime is being removed") && w.Spec.RuntimeName == ""
			dctx, dcancel := badCtx()
			defer dcancel()
			_ = s.ca.Delete(dctx, badDB(next.Name))
		}
		time.Sleep(5 * time.Second) // two of the scheduler's passes: still one event
		events := s.events(got.Name, platformv1alpha1.ReasonRuntimeRemoval)
		last, err := badGet(s.ca, got.Name)
		if err != nil {
			return "the tenant cannot read doomed any more: " + err.Error(), false, nil
		}
		ready := meta.IsStatusConditionTrue(last.Status.Conditions, platformv1alpha1.ConditionReady)
		ok = heldOK && told != nil && told.Type == corev1.EventTypeWarning && strings.Contains(told.Message, badDoomedRuntime) && len(events) == 1 && ready && waitsOK
		if ok {
			// The gist, to fit the table: the twin's condition names the tenant's workspace.
			return fmt.Sprintf("Warning RuntimeRemoval once (%q), still Ready=True; twin held (Removal HostsCapabilities: hosts 1 capability); a new one for %s: Unschedulable, runtime is being removed",
				strings.SplitN(told.Message, ":", 2)[0], region), true, nil
		}
		msg := "no RuntimeRemoval event"
		if told != nil {
			msg = "Warning RuntimeRemoval: " + told.Message
		}
		return fmt.Sprintf("%s (%d events); still %s; the twin: %s; a new capability for region %s: %s", msg, len(events), badCond(last, platformv1alpha1.ConditionReady), held, region, waits), false, nil
	})
	s.run("capability deleted after its runtime was", "tenant a deletes doomed, whose runtime "+badDoomedRuntime+" is being removed; then the runtime goes", func() (string, bool, []string) {
		if doomed == nil {
			return "skipped: doomed was never placed", false, nil
		}
		ctx, cancel := badCtx()
		defer cancel()
		if err := s.ca.Delete(ctx, badDB("doomed")); err != nil {
			return "delete refused: " + err.Error(), false, nil
		}
		var last *postgresv1alpha1.PostgresDatabase
		gone := badPoll(badWait, func(context.Context) bool {
			db, err := badGet(s.ca, "doomed")
			if apierrors.IsNotFound(err) {
				return true
			}
			if err == nil {
				last = db
			}
			return false
		})
		if !gone {
			if last == nil {
				return "the tenant cannot read doomed any more", false, nil
			}
			return fmt.Sprintf("stuck %s after the delete (deletionTimestamp %v, finalizers %v), still %s", badWait,
				last.DeletionTimestamp != nil, last.Finalizers, badCond(last, platformv1alpha1.ConditionReady)), false, nil
		}
		_, serr := badSecret(s.ca, doomedConn)
		deletes := badCalls(doomed.StateDir, "deletes.log", s.clusterA, "doomed")
		pc := s.p.Client(s.t)
		var twinLast string
		twinGone := badPoll(badWait, func(ctx context.Context) bool {
			twin := &platformv1alpha1.ServiceRuntime{}
			err := pc.Get(ctx, client.ObjectKey{Name: badDoomedRuntime}, twin)
			if err == nil {
				twinLast = fmt.Sprintf("still there with finalizers %v", twin.Finalizers)
			}
			return apierrors.IsNotFound(err)
		})
		back := false
		if twinGone {
			// Its servicelet is revoked: it cannot register the runtime again.
			time.Sleep(5 * time.Second)
			bctx, bcancel := badCtx()
			defer bcancel()
			back = pc.Get(bctx, client.ObjectKey{Name: badDoomedRuntime}, &platformv1alpha1.ServiceRuntime{}) == nil
		}
		twin := "the runtime went after it"
		if !twinGone {
			twin = "the runtime did not go: " + twinLast
		}
		return fmt.Sprintf("gone, deleted on the runtime %d times, Secret gone %v; %s (registered again: %v)", deletes, apierrors.IsNotFound(serr), twin, back),
			deletes == 1 && apierrors.IsNotFound(serr) && twinGone && !back, nil
	})
}

// events returns the events of reason about tenant a's capability object.
func (s *badSweep) events(object, reason string) []corev1.Event {
	list := &corev1.EventList{}
	ctx, cancel := badCtx()
	defer cancel()
	if err := s.ca.List(ctx, list, client.InNamespace(badNamespace)); err != nil {
		return nil
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.InvolvedObject.Name == object && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// eventWithin waits up to timeout for an event of reason about tenant a's capability
// object and returns the latest; nil when none came.
func (s *badSweep) eventWithin(object, reason string, timeout time.Duration) *corev1.Event {
	var found *corev1.Event
	badPoll(timeout, func(context.Context) bool {
		if evs := s.events(object, reason); len(evs) > 0 {
			found = &evs[len(evs)-1]
		}
		return found != nil
	})
	return found
}
