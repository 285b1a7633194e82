package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/plugboard/plugboard/internal/account"
	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/store"
)

// Installer keeps the components of installed connectors in the registry
// equal to the versions installed in the store: a minor update reaches
// running flows without a restart (the engine compiles flows again when
// the registry changes), and a removed connector's components disappear.
type Installer struct {
	Store    *store.Store
	Registry *component.Registry
	Runtime  *Runtime
	Log      *slog.Logger

	mu     sync.Mutex
	loaded map[string]string // name -> version in the registry
}

// Sync loads what changed since the last call.
func (in *Installer) Sync(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.loaded == nil {
		in.loaded = map[string]string{}
	}
	installed, err := in.Store.InstalledConnectors(ctx)
	if err != nil {
		return err
	}
	want := make(map[string]string, len(installed))
	var errs []error
	for _, ic := range installed {
		want[ic.Name] = ic.Version
		if in.loaded[ic.Name] == ic.Version {
			continue
		}
		// One connector that cannot load must not keep the others out.
		n, err := in.load(ctx, ic)
		if err != nil {
			errs = append(errs, fmt.Errorf("loading %s %s: %w", ic.Name, ic.Version, err))
			continue
		}
		in.loaded[ic.Name] = ic.Version
		in.log().LogAttrs(ctx, slog.LevelInfo, "connector loaded", slog.String("connector", ic.Name), slog.String("version", ic.Version),
			slog.Int("components", n))
	}
	for name := range in.loaded {
		if _, ok := want[name]; !ok {
			if err := in.Registry.SetConnector(name, nil); err != nil {
				errs = append(errs, err)
				continue
			}
			delete(in.loaded, name)
			in.log().LogAttrs(ctx, slog.LevelInfo, "connector unloaded", slog.String("connector", name))
		}
	}
	return errors.Join(errs...)
}

// load puts the components of one installed version in the registry.
func (in *Installer) load(ctx context.Context, ic store.InstalledConnector) (int, error) {
	data, err := in.Store.ConnectorArchive(ctx, ic.Name, ic.Version)
	if err != nil {
		return 0, err
	}
	pkg, err := ReadArchive(data)
	if err != nil {
		return 0, err
	}
	comps, err := in.Runtime.Components(pkg)
	if err != nil {
		return 0, err
	}
	return len(comps), in.Registry.SetConnector(ic.Name, comps)
}

// Run syncs every interval until ctx ends, so that a node follows the
// installs other nodes make.
func (in *Installer) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := in.Sync(ctx); err != nil && ctx.Err() == nil {
				in.log().LogAttrs(ctx, slog.LevelWarn, "loading installed connectors", slog.String("error", err.Error()))
			}
		}
	}
}

func (in *Installer) log() *slog.Logger {
	if in.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return in.Log
}

// AccountAuth returns how the accounts of installed connector name
// authenticate, from the manifest of its installed version; nil (and no
// error) when it is not installed or its auth is none. It reads what is
// installed now, not what this node has loaded, so that an account can be
// made for a connector another node just installed.
func (in *Installer) AccountAuth(ctx context.Context, name string) (*account.ConnectorAuth, error) {
	installed, err := in.Store.InstalledConnectors(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the auth of connector %s: %w", name, err)
	}
	version := ""
	for _, ic := range installed {
		if ic.Name == name {
			version = ic.Version
			break
		}
	}
	if version == "" {
		return nil, nil
	}
	versions, err := in.Store.ConnectorVersions(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("reading the auth of connector %s: %w", name, err)
	}
	var manifest []byte
	for _, v := range versions {
		if v.Version == version {
			manifest = v.Manifest
		}
	}
	if manifest == nil {
		return nil, nil // uninstalled meanwhile
	}
	// The manifest was checked when it was published: only the parts
	// that matter here are read.
	var m struct {
		BaseURL string   `json:"baseUrl"`
		Auth    *AuthDef `json:"auth"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, fmt.Errorf("reading the manifest of connector %s %s: %w", name, version, err)
	}
	if !m.Auth.UsesAccounts() {
		return nil, nil
	}
	auth := &account.ConnectorAuth{
		Type: m.Auth.Type, In: m.Auth.In, Name: m.Auth.Name, Prefix: m.Auth.Prefix, Grant: m.Auth.Grant,
		AuthorizationURL: m.Auth.AuthorizationURL, TokenURL: m.Auth.TokenURL, Scopes: m.Auth.Scopes, BaseURL: m.BaseURL,
	}
	// Publishing refuses a test other than a literal path (which stays on
	// the account's domain); versions published before that rule may
	// have one, which is left out.
	if t := m.Auth.Test; t != nil && strings.HasPrefix(t.URL, "/") && !strings.Contains(t.URL, "{{") {
		auth.Test = &account.CredentialTest{Method: t.Method, Path: t.URL}
	}
	return auth, nil
}
