package api_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugboard/plugboard/internal/store/storetest"
)

// sysEvent is one verified delivery a receiver accepted.
type sysEvent struct {
	ID        string
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// receiver is a subscriber that checks every request as the Standard
// Webhooks spec says, recomputing the signature on its own.
type receiver struct {
	t   *testing.T
	srv *httptest.Server

	mu        sync.Mutex
	secret    []byte
	failFirst int            // answer 500 to the first n requests of each webhook-id
	status    int            // when not 0, answer this to every request
	requests  map[string]int // webhook-id -> requests seen
	accepted  []sysEvent
	rejected  []string
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, requests: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setSecret(s string) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || !strings.HasPrefix(s, "whsec_") || len(key) < 24 {
		r.t.Fatalf("secret %q is not whsec_ and the base64 of 24 or more bytes", s)
	}
	r.mu.Lock()
	r.secret = key
	r.mu.Unlock()
}

// verify checks headers and signature; it returns why a request is refused.
func (r *receiver) verify(req *http.Request, body []byte, key []byte) string {
	id, ts, sigs := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return "missing webhook headers"
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "bad timestamp " + ts
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return "timestamp too far from now"
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, sig, ok := strings.Cut(s, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return ""
		}
	}
	return "no valid signature in " + sigs
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if why := r.verify(req, body, r.secret); why != "" {
		r.rejected = append(r.rejected, why)
		http.Error(w, why, http.StatusUnauthorized)
		return
	}
	id := req.Header.Get("webhook-id")
	r.requests[id]++
	if r.status != 0 {
		w.WriteHeader(r.status)
		return
	}
	if r.requests[id] <= r.failFirst {
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	ev := sysEvent{ID: id}
	if err := json.Unmarshal(body, &ev); err != nil {
		r.rejected = append(r.rejected, "body is not JSON: "+string(body))
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.accepted = append(r.accepted, ev)
	w.WriteHeader(http.StatusNoContent)
}

// events returns the accepted events of type typ.
func (r *receiver) events(typ string) []sysEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.rejected) > 0 {
		r.t.Errorf("receiver refused requests: %v", r.rejected)
		r.rejected = nil
	}
	var out []sysEvent
	for _, ev := range r.accepted {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func (r *receiver) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.requests {
		n += c
	}
	return n
}

type sysHookResp struct {
	ID     string `json:"id"`
	Event  string `json:"event"`
	URL    string `json:"url"`
	Secret string `json:"secret"`
}

type deliveriesResp struct {
	Items []struct {
		ID             string `json:"id"`
		Event          string `json:"event"`
		Status         string `json:"status"`
		Attempts       int    `json:"attempts"`
		LastStatusCode int    `json:"lastStatusCode"`
		LastError      string `json:"lastError"`
	} `json:"items"`
	NextCursor string `json:"nextCursor"`
}

// subscribe subscribes rc to event and gives it the secret.
func (e *env) subscribe(rc *receiver, event string) sysHookResp {
	e.t.Helper()
	var h sysHookResp
	e.do("POST", "/api/v1/system-webhooks", e.admin, map[string]string{"event": event, "url": rc.srv.URL}, http.StatusCreated, &h)
	rc.setSecret(h.Secret)
	return h
}

func (e *env) deliveries(id string) deliveriesResp {
	e.t.Helper()
	var d deliveriesResp
	e.do("GET", "/api/v1/system-webhooks/"+id+"/deliveries", e.admin, nil, http.StatusOK, &d)
	return d
}

func TestSystemWebhooks(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			t.Run("failures and stops", func(t *testing.T) { t.Parallel(); testSystemEvents(t, backend) })
			t.Run("retried delivery", func(t *testing.T) { t.Parallel(); testSystemWebhookRetries(t, backend) })
			t.Run("api", func(t *testing.T) { t.Parallel(); testSystemWebhookAPI(t, backend) })
			t.Run("delete and failures", func(t *testing.T) { t.Parallel(); testSystemWebhookDelete(t, backend) })
		})
	}
}

func testSystemEvents(t *testing.T, backend string) {
	e := newEnv(t, backend)
	rc := newReceiver(t)
	e.subscribe(rc, "*")
	s := newSink(t, 0)
	s.failAll.Store(true)
	f := e.startFlow(e.admin, forwardFlow(s.srv.URL, 2))
	if code, body := postHook(t, f.Components["hook"].WebhookURL, `{"user":{"email":"x@example.com"},"n":1}`); code != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", code, body)
	}
	eventually(t, 30*time.Second, "MESSAGE_UNPROCESSED and two COMPONENT_ERROR", func() bool {
		return len(rc.events("MESSAGE_UNPROCESSED")) == 1 && len(rc.events("COMPONENT_ERROR")) == 2
	})
	un := rc.events("MESSAGE_UNPROCESSED")[0]
	d := un.Data
	if d["flowId"] != f.ID || d["componentId"] != "call" || d["attempts"] != 2.0 || d["messageId"] == "" ||
		d["correlationId"] == "" || d["ownerId"] == "" || !strings.Contains(d["error"].(string), "503") {
		t.Errorf("MESSAGE_UNPROCESSED data = %v", d)
	}
	if _, err := time.Parse(time.RFC3339, un.Timestamp); err != nil {
		t.Errorf("timestamp %q: %v", un.Timestamp, err)
	}
	seen := map[float64]bool{}
	for _, ev := range rc.events("COMPONENT_ERROR") {
		a, _ := ev.Data["attempt"].(float64)
		seen[a] = true
		if ev.Data["flowId"] != f.ID || ev.Data["componentId"] != "call" || ev.Data["messageId"] != d["messageId"] ||
			ev.Data["correlationId"] != d["correlationId"] || ev.Data["error"] == "" {
			t.Errorf("COMPONENT_ERROR data = %v", ev.Data)
		}
	}
	if !seen[1] || !seen[2] {
		t.Errorf("COMPONENT_ERROR attempts = %v, want 1 and 2", seen)
	}

	e.do("POST", "/api/v1/flows/"+f.ID, e.admin, map[string]string{"command": "stop"}, http.StatusOK, nil)
	eventually(t, 30*time.Second, "FLOW_STOPPED", func() bool { return len(rc.events("FLOW_STOPPED")) == 1 })
	st := rc.events("FLOW_STOPPED")[0].Data
	if st["flowId"] != f.ID || st["ownerId"] != d["ownerId"] || st["reason"] != "stopped-by-user" {
		t.Errorf("FLOW_STOPPED data = %v", st)
	}
	// Stopping a stopped flow changes nothing and says nothing; the
	// next event proves the queue is drained.
	e.do("POST", "/api/v1/flows/"+f.ID, e.admin, map[string]string{"command": "stop"}, http.StatusOK, nil)
	e.do("POST", "/api/v1/flows/"+f.ID, e.admin, map[string]string{"command": "start"}, http.StatusOK, nil)
	e.do("POST", "/api/v1/flows/"+f.ID, e.admin, map[string]string{"command": "stop"}, http.StatusOK, nil)
	eventually(t, 30*time.Second, "second FLOW_STOPPED", func() bool { return len(rc.events("FLOW_STOPPED")) == 2 })
	if n := len(rc.events("FLOW_STOPPED")); n != 2 {
		t.Errorf("%d FLOW_STOPPED events, want 2", n)
	}
}

func testSystemWebhookRetries(t *testing.T, backend string) {
	e := newEnv(t, backend)
	rc := newReceiver(t)
	rc.failFirst = 2
	h := e.subscribe(rc, "FLOW_STOPPED")
	f := e.startFlow(e.admin, forwardFlow("http://127.0.0.1:1/unused", 1))
	e.do("POST", "/api/v1/flows/"+f.ID, e.admin, map[string]string{"command": "stop"}, http.StatusOK, nil)
	eventually(t, 30*time.Second, "FLOW_STOPPED after two failures", func() bool { return len(rc.events("FLOW_STOPPED")) == 1 })
	ev := rc.events("FLOW_STOPPED")[0]
	rc.mu.Lock()
	tries := rc.requests[ev.ID]
	rc.mu.Unlock()
	if tries != 3 {
		t.Errorf("webhook-id %s was sent %d times, want 3 (the same id on every attempt)", ev.ID, tries)
	}
	eventually(t, 10*time.Second, "delivery logged as delivered", func() bool {
		d := e.deliveries(h.ID)
		return len(d.Items) == 1 && d.Items[0].Status == "delivered"
	})
	d := e.deliveries(h.ID).Items[0]
	if d.ID != ev.ID || d.Event != "FLOW_STOPPED" || d.Attempts != 3 || d.LastStatusCode != http.StatusNoContent {
		t.Errorf("delivery log = %+v", d)
	}
}

func testSystemWebhookAPI(t *testing.T, backend string) {
	e := newEnv(t, backend)
	rc := newReceiver(t)
	h := e.subscribe(rc, "COMPONENT_ERROR")
	if h.ID == "" || h.Event != "COMPONENT_ERROR" || h.URL != rc.srv.URL {
		t.Fatalf("created = %+v", h)
	}
	// The secret is in the creation answer only.
	body := e.do("GET", "/api/v1/system-webhooks/"+h.ID, e.admin, nil, http.StatusOK, nil)
	if strings.Contains(string(body), "secret") || strings.Contains(string(body), h.Secret) {
		t.Errorf("GET shows the secret: %s", body)
	}
	body = e.do("GET", "/api/v1/system-webhooks", e.admin, nil, http.StatusOK, nil)
	if strings.Contains(string(body), "secret") || !strings.Contains(string(body), h.ID) {
		t.Errorf("list = %s", body)
	}
	second := e.subscribe(newReceiver(t), "*")
	var page struct {
		Items      []sysHookResp `json:"items"`
		NextCursor string        `json:"nextCursor"`
	}
	e.do("GET", "/api/v1/system-webhooks?limit=1", e.admin, nil, http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != h.ID || page.NextCursor == "" {
		t.Fatalf("first page = %+v", page)
	}
	e.do("GET", "/api/v1/system-webhooks?limit=1&after="+page.NextCursor, e.admin, nil, http.StatusOK, &page)
	if len(page.Items) != 1 || page.Items[0].ID != second.ID {
		t.Fatalf("second page = %+v", page)
	}

	for _, bad := range []map[string]string{
		{"event": "NO_SUCH_EVENT", "url": rc.srv.URL},
		{"event": "FLOW_STOPPED", "url": "ftp://example.com/x"},
		{"event": "FLOW_STOPPED", "url": "not a url"},
		{"event": "FLOW_STOPPED", "url": ""},
	} {
		e.do("POST", "/api/v1/system-webhooks", e.admin, bad, http.StatusUnprocessableEntity, nil)
	}
	e.do("POST", "/api/v1/system-webhooks", e.admin, `{"event":"FLOW_STOPPED","url":"http://x","extra":1}`, http.StatusBadRequest, nil)

	_, userToken := e.user("someone@example.com")
	e.do("POST", "/api/v1/system-webhooks", userToken, map[string]string{"event": "*", "url": rc.srv.URL}, http.StatusForbidden, nil)
	e.do("GET", "/api/v1/system-webhooks", userToken, nil, http.StatusForbidden, nil)
	e.do("GET", "/api/v1/system-webhooks/"+h.ID+"/deliveries", userToken, nil, http.StatusForbidden, nil)
	e.do("DELETE", "/api/v1/system-webhooks/"+h.ID, userToken, nil, http.StatusForbidden, nil)

	e.do("GET", "/api/v1/system-webhooks/nope", e.admin, nil, http.StatusNotFound, nil)
	e.do("GET", "/api/v1/system-webhooks/nope/deliveries", e.admin, nil, http.StatusNotFound, nil)
	e.do("DELETE", "/api/v1/system-webhooks/nope", e.admin, nil, http.StatusNotFound, nil)
}

// testSystemWebhookDelete checks that a deleted subscription receives
// nothing more, and that failures end in the log: a 4xx at once, 5xx once
// the attempts run out.
func testSystemWebhookDelete(t *testing.T, backend string) {
	e := newEnv(t, backend)
	kept, gone, refusing, broken := newReceiver(t), newReceiver(t), newReceiver(t), newReceiver(t)
	refusing.status, broken.status = http.StatusBadRequest, http.StatusBadGateway
	hKept := e.subscribe(kept, "FLOW_STOPPED")
	hGone := e.subscribe(gone, "FLOW_STOPPED")
	hRefusing := e.subscribe(refusing, "FLOW_STOPPED")
	hBroken := e.subscribe(broken, "FLOW_STOPPED")
	e.do("DELETE", "/api/v1/system-webhooks/"+hGone.ID, e.admin, nil, http.StatusNoContent, nil)
	e.do("GET", "/api/v1/system-webhooks/"+hGone.ID, e.admin, nil, http.StatusNotFound, nil)

	f := e.startFlow(e.admin, forwardFlow("http://127.0.0.1:1/unused", 1))
	e.do("POST", "/api/v1/flows/"+f.ID, e.admin, map[string]string{"command": "stop"}, http.StatusOK, nil)
	eventually(t, 30*time.Second, "every delivery settled", func() bool {
		jobs, err := e.store.JobCounts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		for _, c := range jobs {
			n += c
		}
		return n == 0 && len(kept.events("FLOW_STOPPED")) == 1
	})
	if n := gone.total(); n != 0 {
		t.Errorf("deleted subscription received %d requests", n)
	}
	if d := e.deliveries(hKept.ID).Items; len(d) != 1 || d[0].Status != "delivered" || d[0].Attempts != 1 {
		t.Errorf("kept deliveries = %+v", d)
	}
	if d := e.deliveries(hRefusing.ID).Items; len(d) != 1 || d[0].Status != "failed" || d[0].Attempts != 1 ||
		d[0].LastStatusCode != http.StatusBadRequest || !strings.Contains(d[0].LastError, "400") {
		t.Errorf("deliveries answered 400 = %+v", d)
	}
	if d := e.deliveries(hBroken.ID).Items; len(d) != 1 || d[0].Status != "failed" || d[0].Attempts != 8 ||
		d[0].LastStatusCode != http.StatusBadGateway {
		t.Errorf("deliveries answered 502 = %+v", d)
	}
	if n := broken.total(); n != 8 {
		t.Errorf("broken receiver got %d requests, want 8", n)
	}
	// A failed delivery is not a flow's unprocessed message.
	var un unprocessedResp
	e.do("GET", "/api/v1/unprocessed-messages", e.admin, nil, http.StatusOK, &un)
	if len(un.Items) != 0 {
		t.Errorf("unprocessed messages = %+v", un.Items)
	}

	// Deleting a subscription with a delivery waiting drops it.
	broken.mu.Lock()
	broken.status = http.StatusServiceUnavailable
	broken.mu.Unlock()
	e.do("POST", "/api/v1/flows/"+f.ID, e.admin, map[string]string{"command": "start"}, http.StatusOK, nil)
	e.do("POST", "/api/v1/flows/"+f.ID, e.admin, map[string]string{"command": "stop"}, http.StatusOK, nil)
	eventually(t, 30*time.Second, "first retried attempt", func() bool { return broken.total() > 8 })
	e.do("DELETE", "/api/v1/system-webhooks/"+hBroken.ID, e.admin, nil, http.StatusNoContent, nil)
	atDelete := broken.total()
	eventually(t, 30*time.Second, "queue empty", func() bool {
		jobs, _ := e.store.JobCounts(context.Background())
		return jobs["available"]+jobs["running"] == 0
	})
	// At most the attempt under way when the subscription went.
	if n := broken.total(); n > atDelete+1 {
		t.Errorf("deleted subscription received %d more requests", n-atDelete)
	}
}
