package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/connector"
	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
)

const exampleConnector = "../../examples/connectors/acme-crm"

// packExample packs the example connector as version, and returns it
// with the connector's name.
func packExample(t *testing.T, version string) ([]byte, string) {
	t.Helper()
	zipped := packExampleWith(t, "", version, nil)
	pkg, err := connector.ReadArchive(zipped)
	if err != nil {
		t.Fatal(err)
	}
	return zipped, pkg.Manifest.Name
}

// publish posts an archive and returns the status and body.
func (e *env) publish(token string, archive []byte) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/connectors", bytes.NewReader(archive))
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

type catalogue struct {
	Items []struct {
		Name, LatestVersion, InstalledVersion string
		UpdateAvailable                       bool
	}
}

func TestConnectorLifecycle(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			ctx := context.Background()
			v1, name := packExample(t, "1.0.0")
			list := func(q string) catalogue {
				var c catalogue
				e.do("GET", "/api/v1/connectors"+q, e.admin, nil, http.StatusOK, &c)
				return c
			}

			if code, body := e.publish(e.admin, v1); code != http.StatusCreated {
				t.Fatalf("publish: %d %s", code, body)
			}
			if code, _ := e.publish(e.admin, v1); code != http.StatusConflict {
				t.Fatalf("publishing a version twice: %d", code)
			}
			userID, user := e.user("conn-user@example.com")
			if code, _ := e.publish(user, v1); code != http.StatusForbidden {
				t.Fatalf("a user published: %d", code)
			}
			if c := list(""); len(c.Items) != 1 || c.Items[0].Name != name || c.Items[0].LatestVersion != "1.0.0" || c.Items[0].InstalledVersion != "" {
				t.Fatalf("catalogue = %+v", c)
			}
			if c := list("?installed=true"); len(c.Items) != 0 {
				t.Fatalf("installed before install: %+v", c)
			}
			e.do("POST", "/api/v1/connectors/"+name+"/install", e.admin, nil, http.StatusOK, nil)
			e.do("POST", "/api/v1/connectors/"+name+"/install", e.admin, map[string]string{"version": "1.0.0"}, http.StatusConflict, nil)

			// A minor update is available, then applied.
			v11, _ := packExample(t, "1.1.0")
			if code, body := e.publish(e.admin, v11); code != http.StatusCreated {
				t.Fatalf("publish 1.1.0: %d %s", code, body)
			}
			if c := list("?update=available"); len(c.Items) != 1 || c.Items[0].InstalledVersion != "1.0.0" || !c.Items[0].UpdateAvailable {
				t.Fatalf("update available = %+v", c)
			}
			var details struct {
				InstalledVersion string
				Versions         []struct{ Version string }
				Components       []struct{ Type, Kind string }
				Changelog        string
				ACL              []struct{ Role, Resource string }
			}
			e.do("GET", "/api/v1/connectors/"+name, e.admin, nil, http.StatusOK, &details)
			if details.InstalledVersion != "1.0.0" || len(details.Versions) != 2 || details.Versions[0].Version != "1.1.0" ||
				len(details.Components) == 0 || !strings.HasPrefix(details.Components[0].Type, name+".") || details.Changelog == "" ||
				len(details.ACL) != 1 || details.ACL[0].Resource != "*" {
				t.Fatalf("details = %+v", details)
			}
			var upd struct {
				Breaking     bool
				StoppedFlows []any
			}
			e.do("POST", "/api/v1/connectors/"+name+"/update", e.admin, map[string]any{"version": "1.1.0"}, http.StatusOK, &upd)
			if upd.Breaking || len(upd.StoppedFlows) != 0 {
				t.Fatalf("minor update = %+v", upd)
			}

			// A major update stops the running flows that use it, only when
			// confirmed. (Flows are stored directly: the connector runtime is
			// not part of this test.)
			users := func(stage string) *store.Flow {
				f := &store.Flow{ID: "f-" + stage, OwnerID: userID, Name: stage, Stage: store.StageStopped,
					Document: []byte(`{"name":"x","components":{"a":{"type":"` + name + `.CreateContact"}}}`)}
				if err := e.store.CreateFlow(ctx, f); err != nil {
					t.Fatal(err)
				}
				if err := e.store.SetFlowStage(ctx, "", f.ID, stage); err != nil {
					t.Fatal(err)
				}
				return f
			}
			running, stopped := users(store.StageRunning), users(store.StageStopped)
			_ = stopped // a stopped flow using it is neither listed nor stopped again (the counts below)
			v2, _ := packExample(t, "2.0.0")
			if code, body := e.publish(e.admin, v2); code != http.StatusCreated {
				t.Fatalf("publish 2.0.0: %d %s", code, body)
			}
			var refused struct {
				Flows []struct{ FlowID string }
			}
			e.do("POST", "/api/v1/connectors/"+name+"/update", e.admin, map[string]any{"version": "2.0.0"}, http.StatusConflict, &refused)
			if len(refused.Flows) != 1 || refused.Flows[0].FlowID != running.ID {
				t.Fatalf("409 names %+v", refused)
			}
			if f, _ := e.store.Flow(ctx, running.ID); f.Stage != store.StageRunning {
				t.Fatal("a refused update stopped a flow")
			}
			rc := newReceiver(t)
			e.subscribe(rc, "FLOW_STOPPED")
			e.do("POST", "/api/v1/connectors/"+name+"/update", e.admin, map[string]any{"version": "2.0.0", "confirm": true}, http.StatusOK, &upd)
			if !upd.Breaking || len(upd.StoppedFlows) != 1 {
				t.Fatalf("confirmed major update = %+v", upd)
			}
			if f, _ := e.store.Flow(ctx, running.ID); f.Stage != store.StageStopped {
				t.Fatal("the running flow was not stopped")
			}
			// The owner hears of it: a signed FLOW_STOPPED (the receiver
			// checks the signature) with the connector and versions.
			eventually(t, 10*time.Second, "FLOW_STOPPED", func() bool { return len(rc.events("FLOW_STOPPED")) == 1 })
			ev := rc.events("FLOW_STOPPED")[0].Data
			if ev["flowId"] != running.ID || ev["ownerId"] != userID || ev["connector"] != name || ev["fromVersion"] != "1.1.0" ||
				ev["toVersion"] != "2.0.0" || ev["reason"] != "connector-major-update" {
				t.Fatalf("FLOW_STOPPED data = %v", ev)
			}

			// The archive downloads as published.
			resp, err := http.Get(e.srv.URL + "/api/v1/connectors/" + name + "/versions/1.1.0/archive")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("anonymous download: %d", resp.StatusCode)
			}
			req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/api/v1/connectors/"+name+"/versions/1.1.0/archive", nil)
			req.Header.Set("Authorization", "Bearer "+e.admin)
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(got, v11) || resp.Header.Get("Content-Type") != "application/zip" {
				t.Fatalf("download: %d bytes, %s", len(got), resp.Header.Get("Content-Type"))
			}

			// Removing uninstalls; the versions stay.
			e.do("DELETE", "/api/v1/connectors/"+name, e.admin, nil, http.StatusNoContent, nil)
			e.do("DELETE", "/api/v1/connectors/"+name, e.admin, nil, http.StatusNotFound, nil)
			if c := list(""); len(c.Items) != 1 || c.Items[0].InstalledVersion != "" || c.Items[0].LatestVersion != "2.0.0" {
				t.Fatalf("after remove = %+v", c)
			}
		})
	}
}

func TestHostileConnectorArchives(t *testing.T) {
	t.Parallel()
	e := newEnv(t, store.BackendSQLite)
	good, _ := packExample(t, "1.0.0")
	// Rebuild the good archive with one extra entry.
	with := func(name string, data []byte) []byte {
		zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for _, f := range zr.File {
			w, _ := zw.Create(f.Name)
			rc, _ := f.Open()
			_, _ = io.Copy(w, rc)
			rc.Close()
		}
		w, _ := zw.Create(name)
		_, _ = w.Write(data)
		_ = zw.Close()
		return b.Bytes()
	}
	for _, tt := range []struct {
		name    string
		archive []byte
		status  int
	}{
		{"zip slip", with("../../evil.sh", []byte("x")), http.StatusBadRequest},
		{"absolute path", with("/etc/cron.d/evil", []byte("x")), http.StatusBadRequest},
		{"bomb", with("zeros.bin", make([]byte, 11<<20)), http.StatusBadRequest},
		{"not a zip", []byte("hello"), http.StatusBadRequest},
		{"bad manifest", func() []byte {
			var b bytes.Buffer
			zw := zip.NewWriter(&b)
			w, _ := zw.Create("connector.json")
			_, _ = w.Write([]byte(`{"name":"Bad Name!","version":"one","components":[{"name":"","kind":"sideways"}]}`))
			w, _ = zw.Create("CHANGELOG.md")
			_, _ = w.Write([]byte("# 1\n"))
			_ = zw.Close()
			return b.Bytes()
		}(), http.StatusUnprocessableEntity},
	} {
		code, body := e.publish(e.admin, tt.archive)
		if code != tt.status || !strings.Contains(string(body), `"status"`) {
			t.Errorf("%s: %d %s", tt.name, code, body)
		}
		if tt.status == http.StatusUnprocessableEntity && !strings.Contains(string(body), `"errors"`) {
			t.Errorf("%s: no problem list: %s", tt.name, body)
		}
	}
	var c catalogue
	e.do("GET", "/api/v1/connectors", e.admin, nil, http.StatusOK, &c)
	if len(c.Items) != 0 {
		t.Fatalf("a refused archive left %+v", c)
	}
}
