package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/plugboard/plugboard/internal/component"
)

// ServerActivityType is the type of ServerActivity.
const ServerActivityType = "core.ServerActivity"

// Accounts is what ServerActivity needs of the account service: calls
// through an account as a user. The server gives connector.StepAccounts
// (core cannot import the service, which imports the engine, whose tests
// import core). Its errors are a step's: permanent (component.Permanent)
// when trying again cannot help, and each names the account.
type Accounts interface {
	// Do sends req through account id as user ownerID and returns the
	// answer, whatever its status. source ("flow:<flowId>/<componentId>")
	// goes to the account's audit log.
	Do(ctx context.Context, ownerID, id string, req AccountRequest, source string) (*AccountResult, error)
	// Enqueue checks req and queues it as a durable request of its own,
	// whose id it returns.
	Enqueue(ctx context.Context, ownerID, id string, req AccountRequest, source string) (string, error)
}

// AccountRequest is one call through an account.
type AccountRequest struct {
	Method string
	// Path is joined to the account's domain; it may not leave it.
	Path    string
	Query   map[string]any
	Headers map[string]string
	// Body is JSON; a JSON string is sent as text.
	Body json.RawMessage
	// Timeout is a duration such as "10s".
	Timeout string
}

// AccountResult is the answer to a call through an account.
type AccountResult struct {
	Status  int
	Headers map[string]string
	// Body is the JSON value when the answer is JSON, else its text.
	Body any
}

// ServerActivity calls an API through one of the flow owner's accounts:
// the server adds the account's credentials, so that neither the flow
// document nor its logs ever hold them.
type ServerActivity struct {
	accounts Accounts
}

var _ component.Action = (*ServerActivity)(nil)

// NewServerActivity returns the component, making its calls through
// accounts.
func NewServerActivity(accounts Accounts) *ServerActivity {
	return &ServerActivity{accounts: accounts}
}

// Spec describes the component.
func (*ServerActivity) Spec() component.Spec {
	return component.Spec{
		Type: ServerActivityType,
		Kind: component.KindAction,
		ExampleFlow: exampleFlow("Add a contact to the CRM",
			map[string]any{
				"hook": node(WebhookType, nil),
				"crm": node(ServerActivityType, map[string]any{
					"account": "0190f5e2-7c1a-7b3e-9d4f-2a6c8e0b1d35",
					"method":  "POST", "path": "/contacts",
					"body": map[string]any{"email": "{{ $.hook.body.email }}", "source": "signup"},
				}),
			},
			link("hook", "crm")),
		IO: true,
		Description: "Calls an API through one of the flow owner's accounts: the path is joined to the account's domain " +
			"(it may not leave it) and the server adds the account's credentials and headers, which the flow never sees. " +
			"Every call is written to the account's audit log. With wait, emits the answer; answers 408, 429 and 5xx, " +
			"timeouts and network errors are retried with backoff, other 4xx answers fail at once, and so does a call " +
			"through an account that is revoked, invalid or not the owner's. Without wait, the call is queued as a " +
			"durable request of its own (read it with GET /api/v1/accounts/{id}/requests/{requestId}) and the flow goes " +
			"on at once with its requestId. Sends the message id as Idempotency-Key unless headers set one.",
		Properties: []component.Property{
			{Name: "account", Type: component.TypeString, Required: true,
				Description: "Id of the account to call through: one of the flow owner's accounts."},
			{Name: "method", Type: component.TypeString, Default: "GET", Enum: httpMethods, Description: "HTTP method."},
			{Name: "path", Type: component.TypeString, Required: true,
				Description: "Path joined to the account's domain; it may not climb above the domain's path or name another host.",
				Example:     "/contacts"},
			{Name: "query", Type: component.TypeObject, Description: "Query parameters: strings, numbers, booleans or arrays of them."},
			{Name: "headers", Type: component.TypeObject,
				Description: "Request headers (name to string value); they cannot replace the account's credentials."},
			{Name: "body", Type: component.TypeAny, Description: "Request body: strings are sent as text, anything else as JSON."},
			{Name: "timeout", Type: component.TypeString, Default: "30s", Description: "How long to wait for the answer."},
			{Name: "wait", Type: component.TypeBoolean, Default: true,
				Description: "Wait for the answer and emit it; false queues the call and emits its requestId at once."},
		},
		InPorts:      []string{component.PortIn},
		OutPorts:     []string{component.PortOut},
		OutputSample: map[string]any{"status": 201, "headers": map[string]any{"Content-Type": "application/json"}, "body": map[string]any{"id": 42}},
	}
}

// Invoke makes the call as the flow's owner.
func (s *ServerActivity) Invoke(ctx context.Context, inv component.Invocation) ([]component.Emit, error) {
	id, req, wait, err := s.request(inv)
	if err != nil {
		return nil, component.Permanent(err)
	}
	if inv.OwnerID == "" {
		return nil, component.Permanent(fmt.Errorf("account %s: the flow has no owner to act as", id))
	}
	source := "flow:" + inv.FlowID + "/" + inv.ComponentID
	if !wait {
		reqID, err := s.accounts.Enqueue(ctx, inv.OwnerID, id, req, source)
		if err != nil {
			return nil, fmt.Errorf("queueing %s %s: %w", req.Method, req.Path, err)
		}
		return []component.Emit{{Port: component.PortOut, Value: map[string]any{"requestId": reqID}}}, nil
	}
	res, err := s.accounts.Do(ctx, inv.OwnerID, id, req, source)
	if err != nil {
		return nil, err
	}
	if res.Status >= 400 {
		var raw []byte
		if res.Body != nil {
			raw, _ = json.Marshal(res.Body)
		}
		return nil, component.StatusFailure(res.Status,
			fmt.Errorf("account %s: %s %s answered %d: %s", id, req.Method, req.Path, res.Status, snippet(raw)))
	}
	headers := make(map[string]any, len(res.Headers))
	for k, v := range res.Headers {
		headers[k] = v
	}
	out := map[string]any{"status": res.Status, "headers": headers, "body": res.Body}
	return []component.Emit{{Port: component.PortOut, Value: out}}, nil
}

// request reads the resolved properties into the account id, the request
// and whether to wait for its answer.
func (s *ServerActivity) request(inv component.Invocation) (string, AccountRequest, bool, error) {
	p := inv.Properties
	id, _ := p["account"].(string)
	if id == "" {
		return "", AccountRequest{}, false, errors.New("account: an account id is required")
	}
	method := strings.ToUpper(stringOr(p["method"], "GET"))
	if !contains(httpMethods, method) {
		return "", AccountRequest{}, false, fmt.Errorf("method %q is not one of %s", method, strings.Join(httpMethods, ", "))
	}
	path, _ := p["path"].(string)
	if path == "" {
		return "", AccountRequest{}, false, errors.New("path: a path is required")
	}
	req := AccountRequest{Method: method, Path: path, Timeout: stringOr(p["timeout"], "30s")}
	switch q := p["query"].(type) {
	case nil:
	case map[string]any:
		req.Query = q
	default:
		return "", AccountRequest{}, false, errors.New("query: want an object")
	}
	switch hs := p["headers"].(type) {
	case nil:
	case map[string]any:
		req.Headers = make(map[string]string, len(hs)+1)
		for k, v := range hs {
			req.Headers[k] = scalar(v)
		}
	default:
		return "", AccountRequest{}, false, errors.New("headers: want an object")
	}
	if inv.MessageID != "" && !hasHeader(req.Headers, "Idempotency-Key") {
		if req.Headers == nil {
			req.Headers = map[string]string{}
		}
		req.Headers["Idempotency-Key"] = inv.MessageID
	}
	if b, ok := p["body"]; ok && b != nil {
		raw, err := json.Marshal(b)
		if err != nil {
			return "", AccountRequest{}, false, fmt.Errorf("encoding body: %w", err)
		}
		req.Body = raw
	}
	wait := true
	switch w := p["wait"].(type) {
	case nil:
	case bool:
		wait = w
	default:
		return "", AccountRequest{}, false, errors.New("wait: want true or false")
	}
	return id, req, wait, nil
}

// hasHeader reports whether h holds name, in any case.
func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}
