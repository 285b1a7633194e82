package vault

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/plugboard/plugboard/internal/store"
)

// ErrCheckChanged marks a rotation that re-sealed every value but found
// the key check value changed by someone else (another rotation) before it
// could replace it.
var ErrCheckChanged = errors.New("the key check value changed during the rotation")

// Report says what a key rotation did.
type Report struct {
	// From is the id of the key that sealed before the rotation, To the
	// id of the key that seals now.
	From, To string
	// Columns counts the values re-sealed in each sealed column, in the
	// order of store.SealedColumns. Values already sealed with the new
	// key are not counted.
	Columns []ColumnReport
	// CheckReplaced says the key check value was sealed anew; false when
	// it was sealed with the new key already (a rerun).
	CheckReplaced bool
}

// ColumnReport counts the values of one column a rotation re-sealed.
type ColumnReport struct {
	store.SealedColumn
	Resealed int
}

// Resealed is the number of values re-sealed in every column.
func (r Report) Resealed() int {
	n := 0
	for _, c := range r.Columns {
		n += c.Resealed
	}
	return n
}

// Rotate re-seals every value of every store.SealedColumn with newKey and
// then seals the database's key check value with it, so that from then
// on nodes must hold newKey. Values open with any key of from (or newKey);
// those sealed with newKey already are left as they are, so a rerun after
// an interruption finishes the job, and a rerun with the key that is
// current finishes a rotation that nodes with the old key outlived. With
// newKey nil, the rotation re-seals with from's current key.
//
// A value that does not open stops the rotation with an error naming its
// table, row and key id, before the key check value changes: nodes with
// the old key keep starting, and those that hold both keys open both
// kinds of value.
func Rotate(ctx context.Context, st *store.Store, from *Vault, newKey []byte) (Report, error) {
	to := from
	if newKey != nil {
		var err error
		if to, err = from.withCurrent(newKey); err != nil {
			return Report{}, fmt.Errorf("rotating the secret key: %w", err)
		}
	}
	rep := Report{From: from.current.id, To: to.current.id}
	// The database must be the one from belongs to: its check value opens.
	check, err := st.VaultCheck(ctx)
	if err != nil {
		return rep, fmt.Errorf("rotating the secret key: %w", err)
	}
	if err := to.openCheck(check); err != nil {
		return rep, fmt.Errorf("rotating the secret key: %w: the database's key check value does not open with the keys given (ids %s): %w",
			ErrWrongKey, to.keyIDs(), err)
	}
	for _, col := range store.SealedColumns {
		n, err := st.ResealColumn(ctx, col, to.reseal)
		if err != nil {
			return rep, fmt.Errorf("rotating the secret key: %w", err)
		}
		rep.Columns = append(rep.Columns, ColumnReport{SealedColumn: col, Resealed: n})
	}
	if id, _ := SealedKeyID(check); id != to.current.id {
		ok, err := st.ReplaceVaultCheck(ctx, check, to.Seal(checkPlain, checkAD))
		if err != nil {
			return rep, fmt.Errorf("rotating the secret key: %w", err)
		}
		if !ok {
			return rep, fmt.Errorf("rotating the secret key: %w (is another rotation running?); "+
				"every value was re-sealed with key %s, but the check value was not", ErrCheckChanged, to.current.id)
		}
		rep.CheckReplaced = true
	}
	return rep, nil
}

// withCurrent returns a vault that seals with raw and opens what v opens.
func (v *Vault) withCurrent(raw []byte) (*Vault, error) {
	k, err := newKey(raw)
	if err != nil {
		return nil, fmt.Errorf("loading the new key: %w", err)
	}
	keys := maps.Clone(v.keys)
	if have, ok := keys[k.id]; ok {
		if have.sum != k.sum {
			return nil, fmt.Errorf("loading the new key: another key has its id %s", k.id)
		}
		k = have
	}
	keys[k.id] = k
	return &Vault{current: k, keys: keys}, nil
}

// reseal opens a value of a sealed column, whose row's key column holds
// key, and seals it with the current key, unless that sealed it already.
// Its errors name the key id, never the value; store.ResealColumn adds
// the table, the column and the row.
func (v *Vault) reseal(key, sealed string) (string, error) {
	id, err := SealedKeyID(sealed)
	if err != nil {
		return "", err
	}
	if id == v.current.id {
		return sealed, nil
	}
	plain, err := v.Open(sealed, []byte(key))
	if errors.Is(err, ErrUnknownKey) {
		return "", fmt.Errorf("sealed with the key of id %s, which is not among the keys given (ids %s): %w; "+
			"if it is an older key of this database, give it in %s", id, v.keyIDs(), ErrUnknownKey, EnvOldKeys)
	}
	if err != nil {
		return "", fmt.Errorf("sealed with the key of id %s: %w", id, err)
	}
	out := v.Seal(plain, []byte(key))
	clear(plain)
	return out, nil
}

// openCheck opens a key check value and checks what it holds.
func (v *Vault) openCheck(sealed string) error {
	plain, err := v.Open(sealed, checkAD)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(plain, checkPlain) != 1 {
		return errors.New("it holds something else")
	}
	return nil
}

// keyIDs lists the ids of the vault's keys, the current one first.
func (v *Vault) keyIDs() string {
	ids := v.current.id
	for _, id := range slices.Sorted(maps.Keys(v.keys)) {
		if id != v.current.id {
			ids += ", " + id
		}
	}
	return ids
}
