// Package auth hashes passwords and issues and checks access tokens. Only
// hashes are stored; tokens are compared in constant time.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// ErrInvalidToken is any token that is malformed or unknown.
var ErrInvalidToken = errors.New("invalid access token")

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

// HashPassword hashes a password with bcrypt.
func HashPassword(pw string) (string, error) {
	if len(pw) < MinPasswordLen {
		return "", fmt.Errorf("password must be at least %d characters", MinPasswordLen)
	}
	if len(pw) > 72 {
		return "", errors.New("password must be at most 72 bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return string(h), nil
}

// dummyHash is compared against when the user does not exist, so that
// sign-in takes as long for an unknown email as for a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("plugboard-dummy-password"), bcrypt.DefaultCost)

// CheckPassword reports whether pw matches hash. An empty hash (a virtual
// user, who cannot sign in) never matches but costs the same time.
func CheckPassword(hash, pw string) bool {
	if hash == "" {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(pw))
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// NewToken returns a token "<id>.<secret>" to give to the client and the
// hash of its secret to store under id.
func NewToken(id string) (token string, secretHash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	secret := base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(secret))
	return id + "." + secret, h[:]
}

// SplitToken returns the id and secret of a token.
func SplitToken(token string) (id, secret string, err error) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || id == "" || len(secret) != 43 {
		return "", "", ErrInvalidToken
	}
	return id, secret, nil
}

// SecretMatches compares a presented secret with the stored hash in
// constant time.
func SecretMatches(secret string, storedHash []byte) bool {
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], storedHash) == 1
}

// RandomString returns n random bytes as URL-safe base64 (for webhook
// URLs and other unguessable names).
func RandomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: the runtime aborts if the OS source breaks
	return base64.RawURLEncoding.EncodeToString(b)
}
