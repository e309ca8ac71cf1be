package admission

import (
	"reflect"
	"regexp"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// CEL's library (github.com/google/cel-go) is in the module graph only indirectly and
// not in go.mod, so the expressions are checked by their text here, not compiled.

func TestWebhookConfiguration(t *testing.T) {
	ca := []byte("-----BEGIN CERTIFICATE-----")
	cfg := WebhookConfiguration(DefaultWebhookName, "postgres.msp.dev", "https://webhook.example:8443/admit", ca, coordinator)

	if cfg.APIVersion != "admissionregistration.k8s.io/v1" || cfg.Kind != "ValidatingWebhookConfiguration" || cfg.Name != DefaultWebhookName {
		t.Fatalf("got %s %s %q", cfg.APIVersion, cfg.Kind, cfg.Name)
	}
	if len(cfg.Webhooks) != 1 {
		t.Fatalf("%d webhooks, want 1", len(cfg.Webhooks))
	}
	wh := cfg.Webhooks[0]
	if wh.Name != DefaultWebhookName {
		t.Errorf("webhook name %q", wh.Name)
	}
	if wh.ClientConfig.URL == nil || *wh.ClientConfig.URL != "https://webhook.example:8443/admit" || string(wh.ClientConfig.CABundle) != string(ca) || wh.ClientConfig.Service != nil {
		t.Errorf("client config %+v", wh.ClientConfig)
	}
	wantRules := []admissionregistrationv1.RuleWithOperations{{
		Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
		Rule: admissionregistrationv1.Rule{
			APIGroups: []string{"postgres.msp.dev"}, APIVersions: []string{"*"}, Resources: []string{"*", "*/status"},
			Scope: ptr(admissionregistrationv1.AllScopes),
		},
	}}
	if !reflect.DeepEqual(wh.Rules, wantRules) {
		t.Errorf("rules %+v, want %+v", wh.Rules, wantRules)
	}
	if *wh.FailurePolicy != admissionregistrationv1.Fail || *wh.SideEffects != admissionregistrationv1.SideEffectClassNone ||
		*wh.TimeoutSeconds != 5 || !reflect.DeepEqual(wh.AdmissionReviewVersions, []string{"v1"}) {
		t.Errorf("failurePolicy %s, sideEffects %s, timeoutSeconds %d, admissionReviewVersions %v",
			*wh.FailurePolicy, *wh.SideEffects, *wh.TimeoutSeconds, wh.AdmissionReviewVersions)
	}

	want := []admissionregistrationv1.MatchCondition{
		{Name: "skip-coordinator", Expression: `!has(request.userInfo.username) || request.userInfo.username != "msp:coordinator:root:provider"`},
		{Name: "skip-group-system-kcp-admin", Expression: `!has(request.userInfo.groups) || !("system:kcp:admin" in request.userInfo.groups)`},
		{Name: "skip-group-system-masters", Expression: `!has(request.userInfo.groups) || !("system:masters" in request.userInfo.groups)`},
	}
	if !reflect.DeepEqual(wh.MatchConditions, want) {
		t.Errorf("match conditions\n%+v\nwant\n%+v", wh.MatchConditions, want)
	}
	// A match condition's name is a qualified name.
	qualified := regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	for _, mc := range wh.MatchConditions {
		if !qualified.MatchString(mc.Name) {
			t.Errorf("match condition name %q is not a qualified name", mc.Name)
		}
	}
}

func TestWebhookConfigurationWithoutCoordinator(t *testing.T) {
	cfg := WebhookConfiguration(DefaultWebhookName, "postgres.msp.dev", "https://x", nil, "")
	for _, mc := range cfg.Webhooks[0].MatchConditions {
		if mc.Name == "skip-coordinator" {
			t.Errorf("a condition skips the empty user: %q", mc.Expression)
		}
	}
}

func TestCELString(t *testing.T) {
	tests := map[string]string{
		"msp:coordinator:root:org": `"msp:coordinator:root:org"`,
		`it's "quoted"`:            `"it's \"quoted\""`,
		`back\slash`:               `"back\\slash"`,
		"new\nline\ttab":           `"new\nline\ttab"`,
		"nul\x00bell\a":            `"nul\x00bell\a"`,
		"ünïcode":                  `"ünïcode"`,
		"zero\u200bwidth":          `"zero\u200bwidth"`,
		`" || true || "`:           `"\" || true || \""`,
	}
	for in, want := range tests {
		if got := celString(in); got != want {
			t.Errorf("celString(%q) = %s, want %s", in, got, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
