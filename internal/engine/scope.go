package engine

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/plugboard/plugboard/internal/component"
)

// scope holds the outputs of the components upstream of a step, which its
// placeholders read as $.<componentId>. Each value is kept decoded (for
// placeholders) and encoded (for jobs and logs), so it is encoded once.
type scope struct {
	vals map[string]any
	raw  map[string]json.RawMessage
}

func newScope() *scope {
	return &scope{vals: map[string]any{}, raw: map[string]json.RawMessage{}}
}

// with returns a copy of s with id's output added.
func (s *scope) with(id string, v any, raw json.RawMessage) *scope {
	n := &scope{vals: make(map[string]any, len(s.vals)+1), raw: make(map[string]json.RawMessage, len(s.raw)+1)}
	for k, x := range s.vals {
		n.vals[k] = x
	}
	for k, x := range s.raw {
		n.raw[k] = x
	}
	n.vals[id] = v
	n.raw[id] = raw
	return n
}

// encode renders the scope as one JSON object. Keys are component ids,
// which flow validation restricts to letters, digits, '-' and '_'.
func (s *scope) encode() json.RawMessage {
	size := 2
	for k, r := range s.raw {
		size += len(k) + len(r) + 4
	}
	b := make([]byte, 0, size)
	b = append(b, '{')
	first := true
	for k, r := range s.raw {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendQuote(b, k)
		b = append(b, ':')
		b = append(b, r...)
	}
	return append(b, '}')
}

func decodeScope(data []byte) (*scope, error) {
	s := newScope()
	if err := json.Unmarshal(data, &s.raw); err != nil {
		return nil, err
	}
	for k, r := range s.raw {
		var v any
		if err := json.Unmarshal(r, &v); err != nil {
			return nil, err
		}
		s.vals[k] = v
	}
	return s, nil
}

// encEmit is an emitted value with its JSON.
type encEmit struct {
	port string
	v    any
	raw  json.RawMessage
}

func encodeEmits(emits []component.Emit) []encEmit {
	out := make([]encEmit, len(emits))
	for i, em := range emits {
		out[i] = encEmit{port: em.Port, v: em.Value, raw: mustJSON(em.Value)}
	}
	return out
}

// outputJSON is what an invocation log shows as output: the value when
// there is one, else a list of {port, value}.
func outputJSON(emits []encEmit) json.RawMessage {
	if len(emits) == 1 {
		return emits[0].raw
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, em := range emits {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"port":`)
		b.WriteString(strconv.Quote(em.port))
		b.WriteString(`,"value":`)
		b.Write(em.raw)
		b.WriteByte('}')
	}
	b.WriteByte(']')
	return b.Bytes()
}

// encode renders job arguments. Ids are UUIDs or component ids (letters,
// digits, '-', '_'), so quoting needs no JSON escapes; Input and Scope are
// already JSON.
func (a *stepArgs) encode() []byte {
	b := make([]byte, 0, 256+len(a.Input)+len(a.Scope))
	b = append(b, `{"messageId":`...)
	b = strconv.AppendQuote(b, a.MessageID)
	b = append(b, `,"correlationId":`...)
	b = strconv.AppendQuote(b, a.CorrelationID)
	b = append(b, `,"flowId":`...)
	b = strconv.AppendQuote(b, a.FlowID)
	b = append(b, `,"ownerId":`...)
	b = strconv.AppendQuote(b, a.OwnerID)
	b = append(b, `,"componentId":`...)
	b = strconv.AppendQuote(b, a.ComponentID)
	b = append(b, `,"input":`...)
	b = append(b, a.Input...)
	b = append(b, `,"scope":`...)
	b = append(b, a.Scope...)
	b = append(b, `,"maxAttempts":`...)
	b = strconv.AppendInt(b, int64(a.MaxAttempts), 10)
	b = append(b, `,"initialInterval":`...)
	b = strconv.AppendInt(b, int64(a.InitialInterval), 10)
	b = append(b, `,"maxInterval":`...)
	b = strconv.AppendInt(b, int64(a.MaxInterval), 10)
	return append(b, '}')
}
