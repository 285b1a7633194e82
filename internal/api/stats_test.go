package api_test

import (
	"net/http"
	"testing"

	"github.com/plugboard/plugboard/internal/store/storetest"
)

func TestComponentUsage(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend)
			_, user := e.user("usage@example.com")
			running := e.startFlow(user, forwardFlow("http://api.example.com", 3))
			var stopped flowResp
			e.do("POST", "/api/v1/flows", e.admin, map[string]any{
				"name":       "hooks only",
				"components": map[string]any{"a": map[string]any{"type": "core.Webhook"}, "b": map[string]any{"type": "core.Webhook"}},
			}, http.StatusCreated, &stopped)
			type usage struct {
				Items []struct {
					FlowID, Stage string
					Components    int
				}
			}
			get := func(q string) usage {
				var u usage
				e.do("GET", "/api/v1/stats/component-usage?"+q, e.admin, nil, http.StatusOK, &u)
				return u
			}
			if u := get("componentType=core.Webhook&group=flowId"); len(u.Items) != 2 {
				t.Fatalf("core.Webhook users = %+v", u)
			}
			if u := get("componentType=core.Webhook&stage=stopped"); len(u.Items) != 1 || u.Items[0].FlowID != stopped.ID || u.Items[0].Components != 2 {
				t.Fatalf("stopped core.Webhook users = %+v", u)
			}
			if u := get("componentType=core&stage=running"); len(u.Items) != 1 || u.Items[0].FlowID != running.ID || u.Items[0].Components != 3 {
				t.Fatalf("running core users = %+v", u)
			}
			if u := get("componentType=cor"); len(u.Items) != 0 {
				t.Fatalf("a prefix of a connector name matched: %+v", u)
			}
			// An edit re-indexes; a deleted flow is gone from the answer.
			e.do("PUT", "/api/v1/flows/"+stopped.ID, e.admin, map[string]any{
				"name": "one hook", "components": map[string]any{"a": map[string]any{"type": "core.Webhook"}},
			}, http.StatusOK, nil)
			if u := get("componentType=core.Webhook&stage=stopped"); len(u.Items) != 1 || u.Items[0].Components != 1 {
				t.Fatalf("after the edit = %+v", u)
			}
			e.do("DELETE", "/api/v1/flows/"+running.ID, user, nil, http.StatusNoContent, nil)
			if u := get("componentType=core&stage=running"); len(u.Items) != 0 {
				t.Fatalf("after the delete = %+v", u)
			}
			e.do("GET", "/api/v1/stats/component-usage?componentType=core", user, nil, http.StatusForbidden, nil)
			e.do("GET", "/api/v1/stats/component-usage", e.admin, nil, http.StatusBadRequest, nil)
			e.do("GET", "/api/v1/stats/component-usage?componentType=core&stage=paused", e.admin, nil, http.StatusBadRequest, nil)
		})
	}
}
