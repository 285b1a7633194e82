package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/ttlcache"
)

// principal is the authenticated caller.
type principal struct {
	UserID string
	Role   string
}

func (p principal) admin() bool { return p.Role == store.RoleAdmin }

// ownerScope is the owner filter for the caller's resources: admins reach
// every user's resources, users only their own.
func (p principal) ownerScope() string {
	if p.admin() {
		return ""
	}
	return p.UserID
}

func (s *Server) authenticate(h func(w http.ResponseWriter, r *http.Request, p principal) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.principal(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="plugboard"`)
			return problem(http.StatusUnauthorized, "a valid access token is required (Authorization: Bearer <token>)")
		}
		return h(w, r, p)
	}
}

func (s *Server) principal(ctx context.Context, header string) (principal, error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return principal{}, auth.ErrInvalidToken
	}
	id, secret, err := auth.SplitToken(strings.TrimSpace(token))
	if err != nil {
		return principal{}, err
	}
	e, ok := s.tokens.Get(id, time.Now())
	if !ok {
		t, u, err := s.store.TokenUser(ctx, id)
		if err != nil {
			return principal{}, auth.ErrInvalidToken
		}
		e = tokenEntry{hash: t.SecretHash, p: principal{UserID: u.ID, Role: u.Role}}
		s.tokens.Put(id, e, time.Now())
	}
	if !auth.SecretMatches(secret, e.hash) {
		return principal{}, auth.ErrInvalidToken
	}
	return e.p, nil
}

// tokenCache keeps the tokens read in the last ttlcache.DefaultTTL, by
// token id. The secret is still compared on every call; only the read of
// the token and its user is saved.
type tokenCache = ttlcache.Cache[string, tokenEntry]

// tokenEntry is a token's secret hash and whom it stands for.
type tokenEntry struct {
	hash []byte
	p    principal
}

func requireAdmin(h func(w http.ResponseWriter, r *http.Request, p principal) error) func(w http.ResponseWriter, r *http.Request, p principal) error {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		if !p.admin() {
			return problem(http.StatusForbidden, "this needs the admin role")
		}
		return h(w, r, p)
	}
}

// issueToken creates and stores a token for userID.
func (s *Server) issueToken(ctx context.Context, userID string) (string, error) {
	id := uuid.Must(uuid.NewV7()).String()
	token, hash := auth.NewToken(id)
	if err := s.store.CreateToken(ctx, &store.Token{ID: id, UserID: userID, SecretHash: hash}); err != nil {
		return "", err
	}
	return token, nil
}

type signInRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) error {
	var req signInRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	u, err := s.store.UserByEmail(r.Context(), strings.ToLower(strings.TrimSpace(req.Email)))
	hash := ""
	if err == nil {
		hash = u.PasswordHash
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if !auth.CheckPassword(hash, req.Password) {
		return problem(http.StatusUnauthorized, "wrong email or password")
	}
	token, err := s.issueToken(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

type createUserRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Role     string `json:"role"`
	Virtual  bool   `json:"virtual"`
}

// CreateUser validates and stores a user; it is shared by the API and the
// first-admin bootstrap.
func CreateUser(ctx context.Context, st *store.Store, email, password, role string, virtual bool) (*store.User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if at := strings.IndexByte(email, '@'); at < 1 || at == len(email)-1 || len(email) > 254 {
		return nil, problem(http.StatusUnprocessableEntity, "email must be an address such as ada@example.com")
	}
	if role == "" {
		role = store.RoleUser
	}
	if role != store.RoleAdmin && role != store.RoleUser {
		return nil, problem(http.StatusUnprocessableEntity, "role must be admin or user")
	}
	u := &store.User{ID: uuid.Must(uuid.NewV7()).String(), Email: email, Role: role, Virtual: virtual}
	switch {
	case virtual && password != "":
		return nil, problem(http.StatusUnprocessableEntity, "a virtual user has no password; get it a token instead")
	case !virtual:
		h, err := auth.HashPassword(password)
		if err != nil {
			return nil, problem(http.StatusUnprocessableEntity, "%s", err.Error())
		}
		u.PasswordHash = h
	}
	if err := st.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, problem(http.StatusConflict, "a user with email %s exists", email)
		}
		return nil, err
	}
	return u, nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ principal) error {
	var req createUserRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	u, err := CreateUser(r.Context(), s.store, req.Email, req.Password, req.Role, req.Virtual)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, u)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ principal) error {
	after, limit, err := page(r)
	if err != nil {
		return err
	}
	users, err := s.store.ListUsers(r.Context(), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newList(users, limit, func(u *store.User) string { return u.ID }))
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p principal) error {
	u, err := s.store.User(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, _ principal) error {
	u, err := s.store.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	token, err := s.issueToken(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]string{"token": token})
}
