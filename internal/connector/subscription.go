package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/plugboard/plugboard/internal/component"
	"github.com/plugboard/plugboard/internal/mapping"
)

// subscription is a webhook-subscription trigger: it registers its
// inbound URL with the API when its flow starts, removes it when the flow
// stops, and maps each delivery to items.
type subscription struct {
	rt          *Runtime
	spec        component.Spec
	def         *SubscriptionDef
	subscribe   *compiledRequest
	unsubscribe *compiledRequest
	output      *mapping.Template
}

var _ component.Subscriber = (*subscription)(nil)

func (rt *Runtime) subscriber(spec component.Spec, def *SubscriptionDef, base *url.URL) (*subscription, error) {
	s := &subscription{rt: rt, spec: spec, def: def}
	var err error
	if s.subscribe, err = compileRequest(def.Subscribe, base); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if s.unsubscribe, err = compileRequest(def.Unsubscribe, base); err != nil {
		return nil, fmt.Errorf("unsubscribe: %w", err)
	}
	if s.output, err = compileOutput(def.Output); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *subscription) Spec() component.Spec { return s.spec }

// subscriptionState is what a subscription keeps between subscribe and
// unsubscribe.
type subscriptionState struct {
	ID   string `json:"id,omitempty"`
	Body any    `json:"body,omitempty"`
}

// Subscribe sends the subscribe request and keeps the id the API gave
// (at idPath in its answer) and the answer itself.
func (s *subscription) Subscribe(ctx context.Context, inv component.SubscribeInvocation) (json.RawMessage, error) {
	scope := map[string]any{"properties": inv.Properties, "webhookUrl": inv.WebhookURL}
	r, err := s.rt.do(ctx, callerOf(inv.OwnerID, inv.FlowID, inv.ComponentID), s.subscribe, scope, nil, "")
	if err != nil {
		return nil, fmt.Errorf("%s: subscribing: %w", s.spec.Type, err)
	}
	st := subscriptionState{Body: r.Body}
	if s.def.IDPath != "" {
		st.ID = scalar(at(r.Body, s.def.IDPath))
		if st.ID == "" {
			return nil, component.Permanent(fmt.Errorf("%s: the subscribe answer has no id at %q", s.spec.Type, s.def.IDPath))
		}
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.spec.Type, err)
	}
	return raw, nil
}

// Unsubscribe sends the unsubscribe request. An API that answers 404 or
// 410 no longer has the subscription: that counts as done.
func (s *subscription) Unsubscribe(ctx context.Context, inv component.SubscribeInvocation) error {
	var st subscriptionState
	if len(inv.State) > 0 {
		if err := json.Unmarshal(inv.State, &st); err != nil {
			return component.Permanent(fmt.Errorf("%s: reading subscription: %w", s.spec.Type, err))
		}
	}
	scope := map[string]any{"properties": inv.Properties, "webhookUrl": inv.WebhookURL,
		"subscriptionId": st.ID, "subscription": st.Body}
	_, err := s.rt.do(ctx, callerOf(inv.OwnerID, inv.FlowID, inv.ComponentID), s.unsubscribe, scope, nil, "")
	var se *statusError
	if errors.As(err, &se) && (se.status == http.StatusNotFound || se.status == http.StatusGone) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: unsubscribing: %w", s.spec.Type, err)
	}
	return nil
}

// Receive maps a delivery to items: the list at itemsPath in its body, or
// the body itself, each through the output mapping.
func (s *subscription) Receive(_ context.Context, inv component.ReceiveInvocation) ([]any, error) {
	body := inv.Request["body"]
	list := []any{body}
	if s.def.ItemsPath != "" {
		l, ok := at(body, s.def.ItemsPath).([]any)
		if !ok {
			return nil, component.Permanent(fmt.Errorf("%s: no list at %q in the delivery", s.spec.Type, s.def.ItemsPath))
		}
		list = l
	}
	if s.output == nil {
		return list, nil
	}
	items := make([]any, 0, len(list))
	for _, it := range list {
		v, err := s.output.Eval(map[string]any{"properties": inv.Properties, "item": it, "request": inv.Request})
		if err != nil {
			return nil, component.Permanent(fmt.Errorf("%s: output: %w", s.spec.Type, err))
		}
		items = append(items, v)
	}
	return items, nil
}
