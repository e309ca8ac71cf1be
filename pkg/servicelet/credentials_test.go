package servicelet

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	raw, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(raw) + ".c2ln"
}

func TestParseTokenSchedulesRenewalHalfWay(t *testing.T) {
	issued := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	for _, aud := range []any{"msp-frontdoor", []any{"msp-frontdoor"}} {
		c, err := parseToken(jwt(t, map[string]any{
			"sub": "system:serviceaccount:default:servicelet-rt-a", "aud": aud,
			"iat": issued.Unix(), "exp": issued.Add(time.Hour).Unix(),
		}))
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Audience) != 1 || c.Audience[0] != "msp-frontdoor" {
			t.Errorf("audience %v", c.Audience)
		}
		if want := issued.Add(30 * time.Minute); !c.renewAt().Equal(want) {
			t.Errorf("renew at %s, want %s", c.renewAt(), want)
		}
	}
	for name, tok := range map[string]string{
		"static token":    "0123456789abcdef",
		"not expiring":    jwt(t, map[string]any{"sub": "system:serviceaccount:default:x"}),
		"not a SA":        jwt(t, map[string]any{"sub": "alice", "exp": issued.Unix()}),
		"claims not json": "a.bm90IGpzb24.c",
	} {
		if _, err := parseToken(tok); err == nil {
			t.Errorf("%s: parsed as a renewable token", name)
		}
	}
}
