package core

// Builders for the example flows in the component specs (shown in the
// reference documentation; a test checks that each one compiles).

func exampleFlow(name string, components map[string]any, links ...map[string]any) map[string]any {
	return map[string]any{"name": name, "components": components, "links": links}
}

func node(typ string, props map[string]any) map[string]any {
	n := map[string]any{"type": typ}
	if props != nil {
		n["properties"] = props
	}
	return n
}

func link(from, to string) map[string]any { return map[string]any{"from": from, "to": to} }

func linkFrom(from, port, to string) map[string]any {
	return map[string]any{"from": from, "fromPort": port, "to": to}
}

func post(url string, body any) map[string]any {
	return node("core.HttpRequest", map[string]any{"method": "POST", "url": url, "body": body})
}

// forwardExample is "webhook -> map fields -> call an HTTP API".
var forwardExample = exampleFlow("Forward signups",
	map[string]any{
		"hook": node(WebhookType, nil),
		"map":  node("core.Set", map[string]any{"values": map[string]any{"email": "{{ $.hook.body.user.email }}", "source": "web"}}),
		"call": post("https://api.example.com/contacts", "{{ $.map }}"),
	},
	link("hook", "map"), link("map", "call"))
