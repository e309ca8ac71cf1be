package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/msp-dev/msp/pkg/pgserver"
	"github.com/msp-dev/msp/pkg/pgserver/pgservertest"
)

// TestVerifyPasswordAgainstServer checks the local verification against verifiers that
// a real server made: SCRAM-SHA-256 and, where the server still allows it, md5.
func TestVerifyPasswordAgainstServer(t *testing.T) {
	srv := pgservertest.Start(t, pgserver.Options{})
	admin := pgservertest.Connect(t, srv.AdminURL())
	ctx := context.Background()

	passwords := []string{"s3cret", "with space and 'quote'", pgserver.NewPassword(), "x"}
	for _, encryption := range []string{"scram-sha-256", "md5"} {
		t.Run(encryption, func(t *testing.T) {
			if _, err := admin.Exec(ctx, "SET password_encryption = '"+encryption+"'"); err != nil {
				t.Skipf("the server does not allow password_encryption = %s: %v", encryption, err)
			}
			for i, password := range passwords {
				role := strings.ReplaceAll(encryption, "-", "_") + "_role_" + string(rune('a'+i))
				pw, err := quoteLiteral(ctx, admin, password)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := admin.Exec(ctx, "CREATE ROLE "+ident(role)+" LOGIN PASSWORD "+pw); err != nil {
					t.Fatal(err)
				}
				var verifier string
				if err := admin.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&verifier); err != nil {
					t.Fatal(err)
				}
				wantPrefix := map[string]string{"scram-sha-256": "SCRAM-SHA-256$", "md5": "md5"}[encryption]
				if !strings.HasPrefix(verifier, wantPrefix) {
					t.Fatalf("the server stored %q for %s, want a %s verifier", verifier, role, encryption)
				}
				if !verifyPassword(verifier, role, password) {
					t.Errorf("%s: the right password does not verify against %q", role, verifier)
				}
				for _, wrong := range []string{"", password + "x", strings.ToUpper(password) + "!"} {
					if verifyPassword(verifier, role, wrong) {
						t.Errorf("%s: the wrong password %q verifies", role, wrong)
					}
				}
				if encryption == "md5" && verifyPassword(verifier, role+"x", password) {
					t.Errorf("%s: an md5 verifier verifies for another role name", role)
				}
			}
		})
	}
	if _, err := admin.Exec(ctx, "RESET password_encryption"); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyPasswordRejectsMalformed: what is not a verifier this code knows never
// verifies (and an absurd iteration count is not computed).
func TestVerifyPasswordRejectsMalformed(t *testing.T) {
	// A real verifier of "pencil" (RFC 7677's example, PostgreSQL's layout).
	const good = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE0nTWhJxIO/QbTZ3FcUaMv2+hw5Q7+xhU9QxA="
	if !verifyPassword(good, "user", "pencil") {
		t.Fatalf("RFC 7677's example does not verify")
	}
	for _, v := range []string{
		"",
		"pencil",                        // plain text: not stored by PostgreSQL 10 and later
		"md5",                           // too short
		"md5" + strings.Repeat("z", 32), // not what md5 gives
		"SCRAM-SHA-256$",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==",
		"SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:x",
		"SCRAM-SHA-256$999999999:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:x",
		"SCRAM-SHA-256$4096:not base64$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:x",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$c2hvcnQ=:x",
	} {
		if verifyPassword(v, "user", "pencil") {
			t.Errorf("%q verifies", v)
		}
	}

	var c verifiedCache
	if c.verify("user", good, "wrong") || c.cached("user", good, "wrong") {
		t.Error("a wrong password is verified or remembered")
	}
	if !c.verify("user", good, "pencil") || !c.cached("user", good, "pencil") {
		t.Error("the right password is not verified and remembered")
	}
	if c.cached("user", good, "pencil2") || c.cached("other", good, "pencil") {
		t.Error("the cache answers for another password or role")
	}
	c.forget("user")
	if c.cached("user", good, "pencil") {
		t.Error("forget leaves the entry")
	}
}
