package postgres

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	postgresv1alpha1 "github.com/msp-dev/msp/apis/postgres/v1alpha1"
)

// maxDerivedPrefix is how much of an object's name a derived database name keeps: with
// "_" and 8 hex characters it is at most 49 characters, and the default owner (+"_owner")
// at most 55, both within PostgreSQL's 63.
const maxDerivedPrefix = 40

// Names returns the database and owner role a new PostgresDatabase in workspace cluster
// gets, defaults applied. An explicit spec.databaseName or spec.owner is used as it is.
// Without spec.databaseName the database is named after the object, made unique per
// server by a hash of where the object lives (see DefaultDatabaseName); without
// spec.owner the owner is the database name followed by "_owner".
//
// A database created by an earlier version of the driver under the old default (the
// object's name with dashes turned into underscores) keeps its names: the driver finds
// it by its mark, and reports the real names in status.databaseName and status.owner.
func Names(cluster string, db *postgresv1alpha1.PostgresDatabase) (database, owner string) {
	database = db.Spec.DatabaseName
	if database == "" {
		database = DefaultDatabaseName(cluster, db.Namespace, db.Name)
	}
	owner = db.Spec.Owner
	if owner == "" {
		owner = database + "_owner"
	}
	return database, owner
}

// DefaultDatabaseName derives the database name of an object without spec.databaseName:
// its name with every character other than a-z, 0-9 and _ turned into _, prefixed with
// "db_" when it starts with a digit, cut to 40 characters, then "_" and the first 8 hex
// characters of sha256(cluster + "/" + namespace + "/" + name). Two workspaces' objects
// of the same name so get databases of their own on one server.
//
// The result always matches ^[a-z_][a-z0-9_]*$, never starts with pg_ (which PostgreSQL
// reserves for roles, and the API for database names: such names get db_ in front too)
// and has at most 49 characters.
func DefaultDatabaseName(cluster, namespace, name string) string {
	var b strings.Builder
	for _, r := range name {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	base := b.String()
	if base != "" && (base[0] >= '0' && base[0] <= '9' || strings.HasPrefix(base, "pg_")) {
		base = "db_" + base
	}
	if len(base) > maxDerivedPrefix {
		base = base[:maxDerivedPrefix] // ASCII only by now
	}
	sum := sha256.Sum256([]byte(cluster + "/" + namespace + "/" + name))
	return base + "_" + hex.EncodeToString(sum[:4])
}

// legacyDatabaseName is the default database name of earlier versions of the driver.
func legacyDatabaseName(name string) string { return strings.ReplaceAll(name, "-", "_") }

// markPrefix starts the comment of everything the driver creates (see target.mark).
const markPrefix = "msp.dev capability "

// capabilityMark is the comment on the database, the role and the extensions of the
// capability cluster/namespace/name.
func capabilityMark(cluster, namespace, name string) string {
	sum := sha256.Sum256([]byte(cluster + "/" + namespace + "/" + name))
	return markPrefix + hex.EncodeToString(sum[:16])
}

// foreignMark says whether comment is the mark of another capability than ours.
func foreignMark(comment, ours string) bool {
	return strings.HasPrefix(comment, markPrefix) && comment != ours
}
