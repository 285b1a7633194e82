package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store"
	"github.com/plugboard/plugboard/internal/store/storetest"
	"github.com/plugboard/plugboard/internal/vault"
)

// TestNodeLossLosesNothing runs two nodes on one PostgreSQL database,
// loads both, and kills one with SIGKILL. The other takes over the steps
// the dead node held once their leases run out: every webhook either node
// answered 202 is delivered, each message under one idempotency key. A step
// that was in its last attempt when its node died is not run again: it
// lands in the unprocessed messages, saying why.
func TestNodeLossLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	if !strings.Contains(strings.Join(storetest.Backends(), ","), store.BackendPostgres) {
		t.Skip(storetest.EnvPostgres + " is not set")
	}
	bin := buildBinary(t)
	cfg := storetest.Config(t, store.BackendPostgres)

	d, sink := newDeliverySink(t)
	// The sink of the last-attempt flow holds every call until the test ends.
	held := make(chan string, 10)
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held <- r.Header.Get("Idempotency-Key")
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)

	// Node A must die while the held call still runs: its job timeout is
	// well above the load phase (at most 3s) and the rescue comes after it.
	// Nodes of one database share its secret key.
	env := []string{"PLUGBOARD_DATABASE_URL=" + cfg.DatabaseURL, "PLUGBOARD_JOB_TIMEOUT=5s", "PLUGBOARD_RESCUE_AFTER=6s",
		"PLUGBOARD_SECRET_KEY=" + vault.EncodeKey(vault.NewKey())}
	addrA, addrB := freeAddr(t), freeAddr(t)
	a := startServer(t, bin, addrA, append(env, "PLUGBOARD_NODE_ID=node-a", "PLUGBOARD_DATA_DIR="+t.TempDir())...)
	startServer(t, bin, addrB, append(env, "PLUGBOARD_NODE_ID=node-b", "PLUGBOARD_DATA_DIR="+t.TempDir())...)
	baseA, baseB := "http://"+addrA, "http://"+addrB
	token := signIn(t, baseA)
	hookA := createStartedFlow(t, baseA, token, sink.URL)
	path := strings.TrimPrefix(hookA, baseA)

	// A flow whose call has one attempt; start one run on node A, idle, so
	// that node A runs it, and wait until its call is in flight there.
	doc := map[string]any{
		"name": "last attempt",
		"components": map[string]any{
			"hook": map[string]any{"type": "core.Webhook"},
			"call": map[string]any{"type": "core.HttpRequest", "properties": map[string]any{"method": "POST", "url": hang.URL},
				"retry": map[string]any{"maxAttempts": 1}},
		},
		"links": []map[string]string{{"from": "hook", "to": "call"}},
	}
	var last struct {
		ID         string
		Components map[string]struct{ WebhookURL string }
	}
	postJSON(t, baseA+"/api/v1/flows", token, doc, http.StatusCreated, &last)
	postJSON(t, baseA+"/api/v1/flows/"+last.ID, token, map[string]string{"command": "start"}, http.StatusOK, nil)
	postJSON(t, last.Components["hook"].WebhookURL, "", map[string]int{"n": -1}, http.StatusAccepted, nil)
	var heldKey string
	select {
	case heldKey = <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the last-attempt call never reached its sink")
	}

	// Load both nodes; kill node A in the middle.
	l := startLoad(baseA+path, baseB+path)
	l.waitAccepted(400, 3*time.Second)
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	// Node B goes on taking webhooks for a moment after the loss.
	time.Sleep(200 * time.Millisecond)
	total := l.stop()
	if total < 100 {
		t.Fatalf("only %d webhooks accepted", total)
	}
	// Node B alone delivers everything.
	l.waitDelivered(t, d, 60*time.Second, "node A died")
	d.checkKeys(t)

	// The call that died in its last attempt is an unprocessed message on
	// node B, under its message id, and was not called again.
	var um struct {
		Items []struct {
			ID, FlowID, ComponentID, Error string
			Attempts                       int
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(um.Items) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the step lost in its last attempt never reached the unprocessed messages")
		}
		time.Sleep(50 * time.Millisecond)
		getJSON(t, baseB+"/api/v1/unprocessed-messages", token, &um)
	}
	m := um.Items[0]
	if len(um.Items) != 1 || m.ID != heldKey || m.FlowID != last.ID || m.ComponentID != "call" || m.Attempts != 1 ||
		!strings.Contains(m.Error, "stopped before it finished") {
		t.Fatalf("unprocessed messages = %+v (held call had key %s)", um.Items, heldKey)
	}
	select {
	case k := <-held:
		t.Fatalf("the last attempt ran again (key %s)", k)
	default:
	}
	t.Logf("node A killed after %d accepted webhooks; node B delivered them all", total)
}

func getJSON(t *testing.T, url, token string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatal(err)
	}
}
