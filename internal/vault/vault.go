// Package vault keeps secrets encrypted at rest: system webhook signing
// secrets now, account credentials later. A Vault seals a value with
// AES-256-GCM under its current key, with a random nonce per value and the
// caller's associated data (the id of the row that holds it), so that a
// sealed value copied to another row does not open there. A Vault may also
// hold older keys, which still open values but never seal: a key rotation
// re-seals every value under the new key while the old one is accepted.
//
// A sealed value is text, for a TEXT column:
//
//	v1:<key id>:<base64 of nonce, ciphertext and tag>
//
// The key id is the hex of the first 4 bytes of the SHA-256 of the key: it
// names the key a value needs without revealing it. The version and the
// key id are authenticated with the associated data, so neither can be
// changed without the value failing to open.
package vault

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

const (
	version   = "v1"
	keyIDSize = 4 // bytes of SHA-256(key); 8 hex digits
	nonceSize = 12
	tagSize   = 16
)

var encoding = base64.RawStdEncoding

// Errors of Open. None of them carries the value or the plaintext.
var (
	// ErrMalformed: the text is not a sealed value of a known version.
	ErrMalformed = errors.New("not a sealed value")
	// ErrUnknownKey: the value names a key the vault does not hold.
	ErrUnknownKey = errors.New("sealed with a key this vault does not hold")
	// ErrNotAuthentic: the value does not open with the key it names: it
	// was changed, or sealed with other associated data (another row).
	ErrNotAuthentic = errors.New("sealed value does not open: altered, or sealed for another record")
)

// key is one AES-256-GCM key.
type key struct {
	id     string
	header string // "v1:<id>:", the prefix of the values it seals
	sum    [sha256.Size]byte
	aead   cipher.AEAD
}

func newKey(raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("a key must be %d bytes, not %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("making the cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("making the cipher: %w", err)
	}
	sum := sha256.Sum256(raw)
	id := hex.EncodeToString(sum[:keyIDSize])
	return &key{id: id, header: version + ":" + id + ":", sum: sum, aead: aead}, nil
}

// additional is the associated data the cipher authenticates: the value's
// header, then the caller's data. The header ends with ':', which a key id
// never holds, so the two parts cannot be confused.
func (k *key) additional(ad []byte) []byte {
	return append([]byte(k.header), ad...)
}

// KeyID returns the id of a key, as sealed values name it.
func KeyID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:keyIDSize])
}

// Vault seals and opens values. It is safe for concurrent use.
type Vault struct {
	current *key
	keys    map[string]*key // by id: the current key and older ones
}

// New makes a vault that seals with current and opens values sealed with
// current or any of older. Each key is KeySize bytes.
func New(current []byte, older ...[]byte) (*Vault, error) {
	cur, err := newKey(current)
	if err != nil {
		return nil, fmt.Errorf("loading the current key: %w", err)
	}
	v := &Vault{current: cur, keys: map[string]*key{cur.id: cur}}
	for i, raw := range older {
		k, err := newKey(raw)
		if err != nil {
			return nil, fmt.Errorf("loading older key %d: %w", i+1, err)
		}
		if have, ok := v.keys[k.id]; ok {
			if have.sum != k.sum {
				return nil, fmt.Errorf("loading older key %d: two different keys have the id %s", i+1, k.id)
			}
			continue // the same key given twice
		}
		v.keys[k.id] = k
	}
	return v, nil
}

// CurrentKeyID returns the id of the key that seals.
func (v *Vault) CurrentKeyID() string { return v.current.id }

// Seal encrypts plaintext under the current key with a fresh random nonce,
// binding it to ad (the id of the record that will hold it).
func (v *Vault) Seal(plaintext, ad []byte) string {
	k := v.current
	buf := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	_, _ = rand.Read(buf) // never fails (crypto/rand aborts the program instead)
	buf = k.aead.Seal(buf, buf[:nonceSize], plaintext, k.additional(ad))
	out := make([]byte, 0, len(k.header)+encoding.EncodedLen(len(buf)))
	out = append(out, k.header...)
	return string(encoding.AppendEncode(out, buf))
}

// Open decrypts a value Seal made with the same ad, under whichever of the
// vault's keys the value names.
func (v *Vault) Open(sealed string, ad []byte) ([]byte, error) {
	id, body, err := split(sealed)
	if err != nil {
		return nil, err
	}
	k, ok := v.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w (key id %s)", ErrUnknownKey, id)
	}
	raw, err := encoding.DecodeString(body)
	if err != nil || len(raw) < nonceSize+tagSize {
		return nil, ErrMalformed
	}
	plain, err := k.aead.Open(nil, raw[:nonceSize], raw[nonceSize:], k.additional(ad))
	if err != nil {
		return nil, ErrNotAuthentic
	}
	return plain, nil
}

// SealedKeyID returns the id of the key a sealed value names.
func SealedKeyID(sealed string) (string, error) {
	id, _, err := split(sealed)
	return id, err
}

// IsSealed reports whether s has the form of a sealed value. It says
// nothing of whether it opens.
func IsSealed(s string) bool {
	_, _, err := split(s)
	return err == nil
}

// split reads "v1:<id>:<body>".
func split(sealed string) (id, body string, err error) {
	rest, ok := strings.CutPrefix(sealed, version+":")
	if !ok {
		return "", "", ErrMalformed
	}
	id, body, ok = strings.Cut(rest, ":")
	if !ok || len(id) != 2*keyIDSize || !isLowerHex(id) || body == "" {
		return "", "", ErrMalformed
	}
	return id, body, nil
}

func isLowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
