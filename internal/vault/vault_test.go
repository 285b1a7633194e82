package vault_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/plugboard/plugboard/internal/vault"
)

var (
	keyA = bytes.Repeat([]byte{0xa1}, vault.KeySize)
	keyB = bytes.Repeat([]byte{0xb2}, vault.KeySize)
)

func mustNew(t testing.TB, current []byte, older ...[]byte) *vault.Vault {
	t.Helper()
	v, err := vault.New(current, older...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	v := mustNew(t, keyA)
	for _, plain := range []string{"", "whsec_abc", strings.Repeat("x", 10000), "\x00\xff"} {
		sealed := v.Seal([]byte(plain), []byte("row-1"))
		got, err := v.Open(sealed, []byte("row-1"))
		if err != nil || string(got) != plain {
			t.Fatalf("Open(Seal(%q)) = %q, %v", plain, got, err)
		}
		if plain != "" && strings.Contains(sealed, plain) {
			t.Fatalf("sealed value %q holds the plaintext", sealed)
		}
	}
	// A fresh nonce each time: the same plaintext seals differently.
	if a, b := v.Seal([]byte("same"), nil), v.Seal([]byte("same"), nil); a == b {
		t.Fatalf("two seals of one value are equal: %s", a)
	}
}

// TestFormat checks the sealed format the package documents, with the
// standard library alone: "v1:<hex of SHA-256(key)[:4]>:<base64 of nonce,
// ciphertext and tag>", sealed with AES-256-GCM under the header and the
// caller's associated data.
func TestFormat(t *testing.T) {
	t.Parallel()
	v := mustNew(t, keyA)
	sealed := v.Seal([]byte("secret"), []byte("id"))
	sum := sha256.Sum256(keyA)
	wantID := hex.EncodeToString(sum[:4])
	parts := strings.Split(sealed, ":")
	if len(parts) != 3 || parts[0] != "v1" || parts[1] != wantID || vault.KeyID(keyA) != wantID || v.CurrentKeyID() != wantID {
		t.Fatalf("sealed = %q, want v1:%s:<base64>", sealed, wantID)
	}
	raw, err := base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 12+len("secret")+16 {
		t.Fatalf("body of %q: %d bytes, %v; want nonce, ciphertext and tag", sealed, len(raw), err)
	}
	block, err := aes.NewCipher(keyA)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := aead.Open(nil, raw[:12], raw[12:], []byte("v1:"+wantID+":id"))
	if err != nil || string(plain) != "secret" {
		t.Fatalf("opening %q with AES-256-GCM: %q, %v", sealed, plain, err)
	}
	if vault.KeyID(keyA) == vault.KeyID(keyB) {
		t.Fatalf("key ids %q and %q", vault.KeyID(keyA), vault.KeyID(keyB))
	}
	if id, err := vault.SealedKeyID(sealed); err != nil || id != wantID {
		t.Fatalf("SealedKeyID = %q, %v", id, err)
	}
	if !vault.IsSealed(sealed) || vault.IsSealed("whsec_abc") || vault.IsSealed("v1:zz:abc") {
		t.Fatal("IsSealed is wrong")
	}
}

// TestOpenRefuses: altered values, other associated data and other keys
// never open, and the errors say which.
func TestOpenRefuses(t *testing.T) {
	t.Parallel()
	v := mustNew(t, keyA)
	sealed := v.Seal([]byte("whsec_secret"), []byte("row-1"))
	id, body, _ := strings.Cut(strings.TrimPrefix(sealed, "v1:"), ":")
	raw, _ := base64.RawStdEncoding.DecodeString(body)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return "v1:" + id + ":" + base64.RawStdEncoding.EncodeToString(b)
	}
	for _, tc := range []struct {
		name, sealed, ad string
		v                *vault.Vault
		want             error
	}{
		{"nonce changed", flip(0), "row-1", v, vault.ErrNotAuthentic},
		{"ciphertext changed", flip(12), "row-1", v, vault.ErrNotAuthentic},
		{"tag changed", flip(len(raw) - 1), "row-1", v, vault.ErrNotAuthentic},
		{"truncated", sealed[:len(sealed)-4], "row-1", v, vault.ErrNotAuthentic},
		{"too short", "v1:" + id + ":AAAA", "row-1", v, vault.ErrMalformed},
		{"not base64", "v1:" + id + ":%%%%", "row-1", v, vault.ErrMalformed},
		{"other version", "v2" + sealed[2:], "row-1", v, vault.ErrMalformed},
		{"plaintext", "whsec_secret", "row-1", v, vault.ErrMalformed},
		{"empty", "", "row-1", v, vault.ErrMalformed},
		{"other associated data", sealed, "row-2", v, vault.ErrNotAuthentic},
		{"no associated data", sealed, "", v, vault.ErrNotAuthentic},
		{"other key", sealed, "row-1", mustNew(t, keyB), vault.ErrUnknownKey},
		// A value made to name another key still needs that key.
		{"key id changed", "v1:" + vault.KeyID(keyB) + ":" + body, "row-1", mustNew(t, keyB, keyA), vault.ErrNotAuthentic},
	} {
		got, err := tc.v.Open(tc.sealed, []byte(tc.ad))
		if !errors.Is(err, tc.want) || got != nil {
			t.Errorf("%s: Open = %q, %v; want %v", tc.name, got, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), body[:16]) {
			t.Errorf("%s: error %q repeats the value", tc.name, err)
		}
	}
}

// TestOlderKeys: after a rotation the vault seals with the new key and
// still opens values sealed with the old one.
func TestOlderKeys(t *testing.T) {
	t.Parallel()
	before := mustNew(t, keyA).Seal([]byte("kept"), []byte("id"))
	v := mustNew(t, keyB, keyA, keyB)
	if got, err := v.Open(before, []byte("id")); err != nil || string(got) != "kept" {
		t.Fatalf("opening a value sealed with the older key: %q, %v", got, err)
	}
	after := v.Seal([]byte("new"), []byte("id"))
	if id, _ := vault.SealedKeyID(after); id != vault.KeyID(keyB) || v.CurrentKeyID() != id {
		t.Fatalf("sealed with key %s, want the current key %s", id, vault.KeyID(keyB))
	}
	if _, err := mustNew(t, keyA).Open(after, []byte("id")); !errors.Is(err, vault.ErrUnknownKey) {
		t.Fatalf("the old key alone opened a new value: %v", err)
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	t.Parallel()
	for _, k := range [][]byte{nil, make([]byte, 16), make([]byte, 33)} {
		if _, err := vault.New(k); err == nil {
			t.Errorf("New accepted a key of %d bytes", len(k))
		}
		if _, err := vault.New(keyA, k); err == nil {
			t.Errorf("New accepted an older key of %d bytes", len(k))
		}
	}
}

func FuzzOpen(f *testing.F) {
	v := mustNew(f, keyA)
	f.Add(v.Seal([]byte("whsec_x"), []byte("id")), "id")
	f.Add("v1:00000000:", "")
	f.Add("whsec_abc", "id")
	// Only the value sealed above opens, and only with its associated
	// data; anything else fails with one of the three errors.
	f.Fuzz(func(t *testing.T, sealed, ad string) {
		got, err := v.Open(sealed, []byte(ad))
		switch {
		case err == nil && (ad != "id" || string(got) != "whsec_x"):
			t.Fatalf("Open(%q, %q) = %q", sealed, ad, got)
		case err != nil && !errors.Is(err, vault.ErrMalformed) && !errors.Is(err, vault.ErrUnknownKey) && !errors.Is(err, vault.ErrNotAuthentic):
			t.Fatalf("Open(%q, %q): %v", sealed, ad, err)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	v := mustNew(b, keyA)
	plain, ad := []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYq="), []byte("0193a3c2-7b1e-7c3e-9f3a-1d2e3f405162")
	b.ReportAllocs()
	for b.Loop() {
		_ = v.Seal(plain, ad)
	}
}

func BenchmarkOpen(b *testing.B) {
	v := mustNew(b, keyA)
	ad := []byte("0193a3c2-7b1e-7c3e-9f3a-1d2e3f405162")
	sealed := v.Seal([]byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYq="), ad)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Open(sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}
