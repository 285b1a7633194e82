package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// User roles.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// User is a person or a virtual user created by the host product.
type User struct {
	ID           string `json:"id"`
	Email        string `json:"email"`
	PasswordHash string `json:"-"`
	Role         string `json:"role"`
	Virtual      bool   `json:"virtual"`
	CreatedAt    int64  `json:"-"`
}

// Token is an access token; only a hash of its secret is stored.
type Token struct {
	ID         string
	UserID     string
	SecretHash []byte
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// CreateUser inserts u. A taken email is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	u.CreatedAt = s.nowMS()
	_, err := s.backend.writer().exec(ctx,
		`INSERT INTO users (id, email, password_hash, role, virtual, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		u.ID, u.Email, u.PasswordHash, u.Role, u.Virtual, u.CreatedAt)
	if err != nil {
		if s.backend.isUniqueViolation(err) {
			return fmt.Errorf("creating user %s: %w", u.Email, ErrConflict)
		}
		return fmt.Errorf("creating user %s: %w", u.Email, err)
	}
	return nil
}

const userCols = `id, email, password_hash, role, virtual, created_at`

func scanUser(r row) (*User, error) {
	u := &User{}
	if err := r.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Role, &u.Virtual, &u.CreatedAt); err != nil {
		return nil, notFound(err)
	}
	return u, nil
}

// UserByEmail returns the user with that email.
func (s *Store) UserByEmail(ctx context.Context, email string) (*User, error) {
	u, err := scanUser(s.backend.reader().queryRow(ctx, `SELECT `+userCols+` FROM users WHERE email = $1`, email))
	if err != nil {
		return nil, fmt.Errorf("loading user by email: %w", err)
	}
	return u, nil
}

// User returns the user with id.
func (s *Store) User(ctx context.Context, id string) (*User, error) {
	u, err := scanUser(s.backend.reader().queryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("loading user %s: %w", id, err)
	}
	return u, nil
}

// ListUsers returns up to limit users with ids after the cursor.
func (s *Store) ListUsers(ctx context.Context, after string, limit int) ([]*User, error) {
	return collect(ctx, s.backend.reader(), "listing users", scanUser,
		`SELECT `+userCols+` FROM users WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.backend.reader().queryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting users: %w", err)
	}
	return n, nil
}

// CreateToken stores a token.
func (s *Store) CreateToken(ctx context.Context, t *Token) error {
	_, err := s.backend.writer().exec(ctx,
		`INSERT INTO tokens (id, user_id, secret_hash, created_at) VALUES ($1, $2, $3, $4)`,
		t.ID, t.UserID, t.SecretHash, s.nowMS())
	if err != nil {
		return fmt.Errorf("creating token: %w", err)
	}
	return nil
}

// TokenUser returns a token with its user.
func (s *Store) TokenUser(ctx context.Context, tokenID string) (*Token, *User, error) {
	t := &Token{}
	u := &User{}
	err := s.backend.reader().queryRow(ctx,
		`SELECT t.id, t.user_id, t.secret_hash, u.id, u.email, u.password_hash, u.role, u.virtual, u.created_at
		   FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1`, tokenID).
		Scan(&t.ID, &t.UserID, &t.SecretHash, &u.ID, &u.Email, &u.PasswordHash, &u.Role, &u.Virtual, &u.CreatedAt)
	if err != nil {
		return nil, nil, fmt.Errorf("loading token: %w", notFound(err))
	}
	return t, u, nil
}
