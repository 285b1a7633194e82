package api

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/plugboard/plugboard/internal/connector"
	"github.com/plugboard/plugboard/internal/engine"
	"github.com/plugboard/plugboard/internal/flow"
	"github.com/plugboard/plugboard/internal/store"
)

// maxArchiveBytes caps an uploaded connector archive (its unpacked size is
// capped by the connector package).
const maxArchiveBytes = connector.MaxUnpacked + 1<<20

// connectorSummary is one connector in the catalogue.
type connectorSummary struct {
	Name             string `json:"name"`
	Label            string `json:"label"`
	Description      string `json:"description"`
	LatestVersion    string `json:"latestVersion"`
	InstalledVersion string `json:"installedVersion,omitempty"`
	UpdateAvailable  bool   `json:"updateAvailable"`
}

// connectorComponent is one component of a connector version.
type connectorComponent struct {
	Type        string `json:"type"`
	Kind        string `json:"kind"`
	Description string `json:"description"`
}

// connectorVersionInfo is one published version.
type connectorVersionInfo struct {
	Version     string `json:"version"`
	Digest      string `json:"digest"`
	PublishedAt string `json:"publishedAt"`
}

// connectorDetails is the answer about one connector.
type connectorDetails struct {
	connectorSummary
	Versions   []connectorVersionInfo `json:"versions"`
	Components []connectorComponent   `json:"components"`
	Changelog  string                 `json:"changelog"`
	// ACL lists the access rules that concern the connector: those naming
	// it and those for every connector ("*").
	ACL []store.ACLRule `json:"acl"`
}

// publishConnector stores a connector version from its zip archive.
func (s *Server) publishConnector(w http.ResponseWriter, r *http.Request, _ principal) error {
	data, err := readBody(r, maxArchiveBytes)
	if err != nil {
		return err
	}
	pkg, err := connector.ReadArchive(data)
	if err != nil {
		return packageProblem(err)
	}
	v := &store.ConnectorVersion{
		Name: pkg.Manifest.Name, Version: pkg.Manifest.Version, Manifest: pkg.ManifestJSON,
		Changelog: pkg.Changelog, Archive: data, Digest: pkg.Digest,
	}
	if err := s.store.PutConnectorVersion(r.Context(), v); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return problem(http.StatusConflict, "%s %s is already published; publish a new version", v.Name, v.Version)
		}
		return err
	}
	return writeJSON(w, http.StatusCreated, map[string]any{
		"name": v.Name, "version": v.Version, "digest": v.Digest, "components": componentsOf(pkg.Manifest),
	})
}

// packageProblem renders a refused archive: 400 for the archive itself,
// 422 for its manifest, each problem with its path.
func packageProblem(err error) error {
	var ce *connector.Error
	if !errors.As(err, &ce) {
		return fmt.Errorf("reading connector archive: %w", err)
	}
	p := problem(ce.Status(), "%s", ce.Error())
	for _, pr := range ce.Problems {
		p.Errors = append(p.Errors, flow.Problem{Field: pr.Path, Message: pr.Message})
	}
	return p
}

func componentsOf(m connector.Manifest) []connectorComponent {
	out := make([]connectorComponent, len(m.Components))
	for i, c := range m.Components {
		out[i] = connectorComponent{Type: c.Type(m.Name), Kind: c.Kind, Description: c.Description}
	}
	return out
}

// catalogue groups the published versions by connector, oldest first, and
// names each one's latest version and installed version.
type catalogueEntry struct {
	versions  []*store.ConnectorVersion
	latest    *store.ConnectorVersion
	installed string
}

func (s *Server) catalogue(r *http.Request, name string) (map[string]*catalogueEntry, error) {
	versions, err := s.store.ConnectorVersions(r.Context(), name)
	if err != nil {
		return nil, err
	}
	installed, err := s.store.InstalledConnectors(r.Context())
	if err != nil {
		return nil, err
	}
	out := map[string]*catalogueEntry{}
	for _, v := range versions {
		e := out[v.Name]
		if e == nil {
			e = &catalogueEntry{}
			out[v.Name] = e
		}
		e.versions = append(e.versions, v)
		if e.latest == nil || newer(v.Version, e.latest.Version) {
			e.latest = v
		}
	}
	for _, ic := range installed {
		if e := out[ic.Name]; e != nil {
			e.installed = ic.Version
		}
	}
	return out, nil
}

// newer reports whether version a is after b (both were checked when
// published).
func newer(a, b string) bool {
	c, err := connector.CompareVersions(a, b)
	return err == nil && c > 0
}

func (e *catalogueEntry) summary(name string) connectorSummary {
	var m connector.Manifest
	_ = json.Unmarshal(e.latest.Manifest, &m)
	return connectorSummary{
		Name: name, Label: m.Label, Description: m.Description, LatestVersion: e.latest.Version,
		InstalledVersion: e.installed, UpdateAvailable: e.installed != "" && newer(e.latest.Version, e.installed),
	}
}

// listConnectors is the catalogue: ?q= (name, label or description),
// ?installed=true|false, ?update=available.
func (s *Server) listConnectors(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	installed := q.Get("installed")
	if installed != "" && installed != "true" && installed != "false" {
		return problem(http.StatusBadRequest, "installed must be true or false")
	}
	if u := q.Get("update"); u != "" && u != "available" {
		return problem(http.StatusBadRequest, "update must be available")
	}
	cat, err := s.catalogue(r, "")
	if err != nil {
		return err
	}
	items := []connectorSummary{}
	search := strings.ToLower(q.Get("q"))
	for _, name := range slices.Sorted(maps.Keys(cat)) {
		sum := cat[name].summary(name)
		switch {
		case search != "" && !strings.Contains(strings.ToLower(sum.Name+" "+sum.Label+" "+sum.Description), search):
		case installed == "true" && sum.InstalledVersion == "", installed == "false" && sum.InstalledVersion != "":
		case q.Get("update") == "available" && !sum.UpdateAvailable:
		default:
			items = append(items, sum)
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

// getConnector describes one connector: its versions, the components and
// changelog of the installed version (or the latest when none is).
func (s *Server) getConnector(w http.ResponseWriter, r *http.Request, _ principal) error {
	name := r.PathValue("name")
	cat, err := s.catalogue(r, name)
	if err != nil {
		return err
	}
	e := cat[name]
	if e == nil {
		return problem(http.StatusNotFound, "no connector %q is published", name)
	}
	shown := e.latest
	for _, v := range e.versions {
		if v.Version == e.installed {
			shown = v
		}
	}
	var m connector.Manifest
	if err := json.Unmarshal(shown.Manifest, &m); err != nil {
		return fmt.Errorf("reading manifest of %s %s: %w", name, shown.Version, err)
	}
	d := connectorDetails{connectorSummary: e.summary(name), Components: componentsOf(m), Changelog: shown.Changelog, ACL: []store.ACLRule{}}
	rules, err := s.store.ACLRules(r.Context())
	if err != nil {
		return err
	}
	for _, rule := range rules {
		if rule.Resource == name || rule.Resource == "*" {
			d.ACL = append(d.ACL, rule)
		}
	}
	for _, v := range e.versions {
		d.Versions = append(d.Versions, connectorVersionInfo{Version: v.Version, Digest: v.Digest, PublishedAt: store.FromMillis(v.PublishedAt).Format(timeFormat)})
	}
	slices.SortStableFunc(d.Versions, func(a, b connectorVersionInfo) int { // newest first
		c, _ := connector.CompareVersions(b.Version, a.Version)
		return c
	})
	return writeJSON(w, http.StatusOK, d)
}

// connectorArchive downloads a published version as it was uploaded.
func (s *Server) connectorArchive(w http.ResponseWriter, r *http.Request, _ principal) error {
	name, version := r.PathValue("name"), r.PathValue("version")
	data, err := s.store.ConnectorArchive(r.Context(), name, version)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return problem(http.StatusNotFound, "%s %s is not published", name, version)
		}
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.zip"`, name, version))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return nil
}

// installRequest is the body of install and update.
type installRequest struct {
	Version string `json:"version"`
	Confirm bool   `json:"confirm"`
}

// installConnector installs a version (the latest when none is named) of a
// connector that is not installed.
func (s *Server) installConnector(w http.ResponseWriter, r *http.Request, _ principal) error {
	var req installRequest
	if err := s.decodeOptional(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	cat, err := s.catalogue(r, name)
	if err != nil {
		return err
	}
	e := cat[name]
	if e == nil {
		return problem(http.StatusNotFound, "no connector %q is published", name)
	}
	if e.installed != "" {
		return problem(http.StatusConflict, "%s %s is installed; use update to change its version", name, e.installed)
	}
	version := cmp.Or(req.Version, e.latest.Version)
	// Installed only if still not installed: a concurrent install or
	// update wins, and this one answers 409.
	if err := s.store.InTx(r.Context(), func(tx *store.Tx) error { return tx.InstallConnector(r.Context(), name, version) }); err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound):
			return problem(http.StatusNotFound, "%s %s is not published", name, version)
		case errors.Is(err, store.ErrConflict):
			return problem(http.StatusConflict, "%s is installed; use update to change its version", name)
		}
		return err
	}
	s.syncConnectors(r)
	return writeJSON(w, http.StatusOK, map[string]any{"name": name, "version": version})
}

// updateConnector moves an installed connector to another version. A
// breaking (major) change needs "confirm": true and stops, in the same
// transaction, every running flow that uses the connector.
func (s *Server) updateConnector(w http.ResponseWriter, r *http.Request, _ principal) error {
	var req installRequest
	if err := s.decode(r, &req); err != nil {
		return err
	}
	name := r.PathValue("name")
	if req.Version == "" {
		return problem(http.StatusUnprocessableEntity, "version is required")
	}
	ctx := r.Context()
	var from string
	var major bool
	stopped := []usageItem{}
	// The installed version is read, and the update decided, inside the
	// transaction that makes it: two updates at once cannot both start
	// from the same version.
	err := s.store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if from, err = tx.InstalledVersion(ctx, name); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return problem(http.StatusNotFound, "%s is not installed", name)
			}
			return err
		}
		if from == req.Version {
			return problem(http.StatusConflict, "%s %s is installed already", name, from)
		}
		if major, err = connector.IsMajorUpdate(from, req.Version); err != nil {
			return problem(http.StatusUnprocessableEntity, "%v", err)
		}
		if major {
			running, err := tx.ComponentUsage(ctx, name, store.StageRunning)
			if err != nil {
				return err
			}
			stopped = usageItems(running)
			if len(running) > 0 && !req.Confirm {
				p := problem(http.StatusConflict, "%s %s → %s is a breaking update: it stops the %d running flows that use %s; send \"confirm\": true to go on",
					name, from, req.Version, len(running), name)
				p.Flows = stopped
				return p
			}
			for _, f := range running {
				if err := tx.StopFlow(ctx, f.FlowID); err != nil {
					return err
				}
				if s.cfg.SystemWebhooks == nil {
					continue
				}
				err := s.cfg.SystemWebhooks.Emit(ctx, tx, engine.EventFlowStopped, map[string]any{
					"flowId": f.FlowID, "ownerId": f.OwnerID, "connector": name,
					"fromVersion": from, "toVersion": req.Version, "reason": "connector-major-update",
				})
				if err != nil {
					return err
				}
			}
		}
		return tx.SetInstalledConnector(ctx, name, req.Version)
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return problem(http.StatusNotFound, "%s %s is not published", name, req.Version)
		}
		return err
	}
	s.syncConnectors(r)
	return writeJSON(w, http.StatusOK, map[string]any{
		"name": name, "fromVersion": from, "toVersion": req.Version, "breaking": major, "stoppedFlows": stopped,
	})
}

// removeConnector uninstalls a connector; flows using it keep running (see
// docs/connectors.md) and its versions stay published.
func (s *Server) removeConnector(w http.ResponseWriter, r *http.Request, _ principal) error {
	if err := s.store.RemoveInstalledConnector(r.Context(), r.PathValue("name")); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return problem(http.StatusNotFound, "%s is not installed", r.PathValue("name"))
		}
		return err
	}
	s.syncConnectors(r)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// syncConnectors loads the installed versions into this node's registry
// (other nodes follow within seconds). The change is committed by then: a
// connector that cannot load is logged, and the answer stays a success.
func (s *Server) syncConnectors(r *http.Request) {
	if s.cfg.Connectors == nil {
		return
	}
	if err := s.cfg.Connectors.Sync(r.Context()); err != nil {
		s.log.LogAttrs(r.Context(), slog.LevelError, "loading installed connectors", slog.String("error", err.Error()))
	}
}

func usageItems(us []store.ComponentUsage) []usageItem {
	items := make([]usageItem, len(us))
	for i, u := range us {
		items[i] = usageItem{FlowID: u.FlowID, Name: u.Name, OwnerID: u.OwnerID, Stage: u.Stage, Components: u.Components}
	}
	return items
}
