package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ConnectorVersion is one published version of a connector.
type ConnectorVersion struct {
	Name        string
	Version     string
	Manifest    []byte // connector.json as published
	Changelog   string
	Archive     []byte // the zip as uploaded; empty when listed
	Digest      string // hex SHA-256 of Archive
	PublishedAt int64
}

// PutConnectorVersion stores a published version. A version published
// before is ErrConflict: versions never change once published.
func (s *Store) PutConnectorVersion(ctx context.Context, v *ConnectorVersion) error {
	v.PublishedAt = s.nowMS()
	_, err := s.backend.writer().exec(ctx,
		`INSERT INTO connector_versions (name, version, manifest, changelog, archive, digest, published_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		v.Name, v.Version, string(v.Manifest), v.Changelog, v.Archive, v.Digest, v.PublishedAt)
	if s.backend.isUniqueViolation(err) {
		return fmt.Errorf("publishing %s %s: %w", v.Name, v.Version, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("publishing %s %s: %w", v.Name, v.Version, err)
	}
	return nil
}

// ConnectorVersions lists the published versions of every connector, or of
// one when name is set, without their archives, by name then publication.
func (s *Store) ConnectorVersions(ctx context.Context, name string) ([]*ConnectorVersion, error) {
	return collect(ctx, s.backend.reader(), "listing connector versions", func(r row) (*ConnectorVersion, error) {
		v := &ConnectorVersion{}
		var m string
		if err := r.Scan(&v.Name, &v.Version, &m, &v.Changelog, &v.Digest, &v.PublishedAt); err != nil {
			return nil, err
		}
		v.Manifest = []byte(m)
		return v, nil
	}, `SELECT name, version, manifest, changelog, digest, published_at FROM connector_versions
		 WHERE $1 = '' OR name = $1 ORDER BY name, published_at, version`, name)
}

// ConnectorArchive returns the zip of one published version.
func (s *Store) ConnectorArchive(ctx context.Context, name, version string) ([]byte, error) {
	var a []byte
	err := s.backend.reader().queryRow(ctx,
		`SELECT archive FROM connector_versions WHERE name = $1 AND version = $2`, name, version).Scan(&a)
	if err != nil {
		return nil, fmt.Errorf("reading archive of %s %s: %w", name, version, notFound(err))
	}
	return a, nil
}

// InstalledConnector is the version of a connector in use.
type InstalledConnector struct {
	Name        string
	Version     string
	InstalledAt int64
	UpdatedAt   int64
}

// InstalledConnectors lists the installed connectors by name.
func (s *Store) InstalledConnectors(ctx context.Context) ([]InstalledConnector, error) {
	return collect(ctx, s.backend.reader(), "listing installed connectors", func(r row) (InstalledConnector, error) {
		var c InstalledConnector
		return c, r.Scan(&c.Name, &c.Version, &c.InstalledAt, &c.UpdatedAt)
	}, `SELECT name, version, installed_at, updated_at FROM installed_connectors ORDER BY name`)
}

// SetInstalledConnector makes version the installed version of name, in
// tx (with whatever else the change does, such as stopping flows). The
// version must have been published.
func (tx *Tx) SetInstalledConnector(ctx context.Context, name, version string) error {
	_, err := tx.installConnector(ctx, name, version,
		`ON CONFLICT (name) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`)
	return err
}

// InstallConnector installs version of a connector that is not installed;
// ErrConflict when it is (also when another install came first).
func (tx *Tx) InstallConnector(ctx context.Context, name, version string) error {
	n, err := tx.installConnector(ctx, name, version, `ON CONFLICT (name) DO NOTHING`)
	if err == nil && n == 0 {
		err = fmt.Errorf("installing %s %s: it is installed already: %w", name, version, ErrConflict)
	}
	return err
}

// installConnector writes the installed version of a published version,
// resolving a conflict on the name as onConflict says.
func (tx *Tx) installConnector(ctx context.Context, name, version, onConflict string) (int64, error) {
	var one int
	if err := tx.q.queryRow(ctx, `SELECT 1 FROM connector_versions WHERE name = $1 AND version = $2`, name, version).Scan(&one); err != nil {
		return 0, fmt.Errorf("installing %s %s: %w", name, version, notFound(err))
	}
	t := tx.store.nowMS()
	n, err := tx.q.exec(ctx,
		`INSERT INTO installed_connectors (name, version, installed_at, updated_at) VALUES ($1, $2, $3, $3) `+onConflict,
		name, version, t)
	if err != nil {
		return 0, fmt.Errorf("installing %s %s: %w", name, version, err)
	}
	return n, nil
}

// RemoveInstalledConnector uninstalls name; its versions stay published.
func (s *Store) RemoveInstalledConnector(ctx context.Context, name string) error {
	n, err := s.backend.writer().exec(ctx, `DELETE FROM installed_connectors WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("removing %s: %w", name, ErrNotFound)
	}
	return nil
}

// StopFlow stops a flow inside tx (a major connector update stops the
// flows using it in the transaction that installs it).
// The caller has read the flow running.
func (tx *Tx) StopFlow(ctx context.Context, id string) error {
	return tx.setStage(ctx, id, StageRunning, StageStopped)
}

// ComponentUsage is a flow that uses a component type or connector.
type ComponentUsage struct {
	FlowID     string
	Name       string
	OwnerID    string
	Stage      string
	Components int // how many of its components are of that type or connector
}

// ComponentUsage lists the flows using componentType: a full type such as
// "core.Webhook", or a connector name such as "core" (any of its types).
// stage "" lists flows in either stage.
func (s *Store) ComponentUsage(ctx context.Context, componentType, stage string) ([]ComponentUsage, error) {
	return s.readTx().componentUsage(ctx, componentType, stage)
}

// ComponentUsage is Store.ComponentUsage inside tx.
func (tx *Tx) ComponentUsage(ctx context.Context, componentType, stage string) ([]ComponentUsage, error) {
	return tx.componentUsage(ctx, componentType, stage)
}

// readTx runs Tx queries on the read pool, outside a transaction.
func (s *Store) readTx() *Tx { return &Tx{q: s.backend.reader(), store: s} }

func (tx *Tx) componentUsage(ctx context.Context, componentType, stage string) ([]ComponentUsage, error) {
	// A full type is one key; a connector name is the range of its types.
	lo, hi := componentType, componentType
	cond := `c.type = $1 AND $2 = $2`
	if !strings.Contains(componentType, ".") {
		lo, hi = componentType+".", componentType+"/" // '/' follows '.'
		cond = `c.type >= $1 AND c.type < $2`
	}
	return collect(ctx, tx.q, "listing component usage", func(r row) (ComponentUsage, error) {
		var u ComponentUsage
		return u, r.Scan(&u.FlowID, &u.Name, &u.OwnerID, &u.Stage, &u.Components)
	}, `SELECT f.id, f.name, f.owner_id, f.stage, COUNT(*) FROM flow_components c JOIN flows f ON f.id = c.flow_id
		 WHERE `+cond+` AND ($3 = '' OR f.stage = $3)
		 GROUP BY f.id, f.name, f.owner_id, f.stage ORDER BY f.id`, lo, hi, stage)
}

// putComponents makes the index of flow f's component types match its
// components.
func (tx *Tx) putComponents(ctx context.Context, f *Flow, comps map[string]docComponent) error {
	if _, err := tx.q.exec(ctx, `DELETE FROM flow_components WHERE flow_id = $1`, f.ID); err != nil {
		return fmt.Errorf("indexing components of flow %s: %w", f.ID, err)
	}
	for _, id := range slices.Sorted(maps.Keys(comps)) {
		if _, err := tx.q.exec(ctx, `INSERT INTO flow_components (type, flow_id, component_id) VALUES ($1, $2, $3)`, comps[id].Type, f.ID, id); err != nil {
			return fmt.Errorf("indexing component %s of flow %s: %w", id, f.ID, err)
		}
	}
	return nil
}

// InstalledVersion returns the installed version of name inside tx, or
// ErrNotFound. On PostgreSQL the row stays locked until tx ends, so two
// updates of one connector run one after the other (SQLite transactions
// that write are serial already).
func (tx *Tx) InstalledVersion(ctx context.Context, name string) (string, error) {
	lock := ""
	if tx.store.name == BackendPostgres {
		lock = " FOR UPDATE"
	}
	var v string
	if err := tx.q.queryRow(ctx, `SELECT version FROM installed_connectors WHERE name = $1`+lock, name).Scan(&v); err != nil {
		return "", fmt.Errorf("reading the installed version of %s: %w", name, notFound(err))
	}
	return v, nil
}
