package postgres

import (
	"crypto/hmac"
	"crypto/md5" // PostgreSQL's md5 password verifiers are md5
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
)

// maxSCRAMIterations bounds the work one verification may cost. PostgreSQL uses 4096 by
// default (scram_iterations, since 16); a role can store a verifier of its own making
// (ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'), and one with a huge count must not tie
// up the servicelet. Beyond it a password counts as not verified.
const maxSCRAMIterations = 1 << 20

// verifyPassword says whether password is the one behind verifier, a role's
// pg_authid.rolpassword: SCRAM-SHA-256 or md5. Anything else (no password, a format this
// code does not know) does not verify.
//
// SCRAM hashes the password after SASLprep; PostgreSQL falls back to the raw bytes when
// SASLprep does not apply, as for every ASCII password, and so does this code for all
// passwords: a non-ASCII password that SASLprep would change does not verify.
func verifyPassword(verifier, role, password string) bool {
	switch {
	case strings.HasPrefix(verifier, "SCRAM-SHA-256$"):
		return verifySCRAM(verifier, password)
	case len(verifier) == 35 && strings.HasPrefix(verifier, "md5"):
		sum := md5.Sum([]byte(password + role))
		want := "md5" + hex.EncodeToString(sum[:])
		return subtle.ConstantTimeCompare([]byte(want), []byte(verifier)) == 1
	}
	return false
}

// verifySCRAM checks password against "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>"
// (RFC 5802, RFC 7677): StoredKey = SHA256(HMAC(SaltedPassword, "Client Key")), with
// SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iter).
func verifySCRAM(verifier, password string) bool {
	params, keys, ok := strings.Cut(strings.TrimPrefix(verifier, "SCRAM-SHA-256$"), "$")
	if !ok {
		return false
	}
	iterText, saltText, ok := strings.Cut(params, ":")
	if !ok {
		return false
	}
	storedText, _, ok := strings.Cut(keys, ":")
	if !ok {
		return false
	}
	iter, err := strconv.Atoi(iterText)
	if err != nil || iter < 1 || iter > maxSCRAMIterations {
		return false
	}
	salt, err := base64.StdEncoding.DecodeString(saltText)
	if err != nil || len(salt) == 0 {
		return false
	}
	stored, err := base64.StdEncoding.DecodeString(storedText)
	if err != nil || len(stored) != sha256.Size {
		return false
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	storedKey := sha256.Sum256(mac.Sum(nil))
	return subtle.ConstantTimeCompare(storedKey[:], stored) == 1
}

// verifiedCache remembers, per role, the last verifier and password that verified, as a
// hash of both, so that the resync does not run PBKDF2 every minute. It holds one entry
// per role; a new verifier (a rotation) or another password misses.
type verifiedCache struct {
	mu sync.Mutex
	ok map[string][sha256.Size]byte
}

func verifiedKey(verifier, password string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{verifier, password} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// verify is verifyPassword, remembering successes.
func (c *verifiedCache) verify(role, verifier, password string) bool {
	key := verifiedKey(verifier, password)
	c.mu.Lock()
	hit := c.ok != nil && c.ok[role] == key
	c.mu.Unlock()
	if hit {
		return true
	}
	if !verifyPassword(verifier, role, password) {
		return false
	}
	c.mu.Lock()
	if c.ok == nil {
		c.ok = map[string][sha256.Size]byte{}
	}
	c.ok[role] = key
	c.mu.Unlock()
	return true
}

// forget drops what is remembered of role.
func (c *verifiedCache) forget(role string) {
	c.mu.Lock()
	delete(c.ok, role)
	c.mu.Unlock()
}

// cached says whether role's verifier and password are remembered (for tests).
func (c *verifiedCache) cached(role, verifier, password string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ok != nil && c.ok[role] == verifiedKey(verifier, password)
}
