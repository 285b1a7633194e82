// Package core holds the built-in components of the "core" connector, one
// file per component.
package core

import (
	"net/http"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/script"
)

// Deps are what the core components need from the server.
type Deps struct {
	// HTTP makes outbound calls; it refuses private addresses unless the
	// operator allows them.
	HTTP *http.Client
	// MaxResponseBytes caps response bodies read by HttpRequest.
	MaxResponseBytes int64
	// Replies takes core.Response answers for waiting webhooks.
	Replies ReplySink
	// Sandbox runs core.Code scripts (default: one with default limits).
	// The server shares it with connectors' script components, so that
	// all scripts together keep to its limits.
	Sandbox *script.Sandbox
	// Accounts makes ServerActivity's calls through users' accounts
	// (connector.StepAccounts); without it ServerActivity is not
	// registered.
	Accounts Accounts
}

// Register adds every core component to r (ServerActivity only when
// d.Accounts is set).
func Register(r *component.Registry, d Deps) {
	r.Register(Webhook{})
	r.Register(OnAppEvent{})
	r.Register(Schedule{})
	r.Register(Set{})
	r.Register(NewCodeWith(d.Sandbox))
	r.Register(&HTTPRequest{client: d.HTTP, maxBody: d.MaxResponseBytes})
	r.Register(Filter{})
	r.Register(Delay{})
	r.Register(&Response{replies: d.Replies})
	if d.Accounts != nil {
		r.Register(NewServerActivity(d.Accounts))
	}
}
